"""Where personal data lives: the one registry of personal columns (table → column → kind of
value) and the JSON keys that hold personal values in payloads. A new column that can hold a
name, an identity number, a phone, an e-mail, an address or free text belongs here
(tests/integration/test_vault_masking.py fails when a value of such a column survives a masked
copy).

Every other text and JSON column that is not a key is masked by occurrence: each registered
value found in it (events' payloads, audit before/after, raw bodies, quarantined records,
messages, notifications…) is replaced by the value's pseudonym.
"""

from __future__ import annotations

# kinds: name, company, national_id, identifier, phone, email, address, full_address, text,
# recipient (a phone or an e-mail), filename, birth_date, coordinate (a customer's place on
# the map: moved a little; the agents' own GPS tracks are staff data and kept, their speeds
# between points must stay plausible), json (masked by JSON_KEYS)
PERSONAL_COLUMNS: dict[str, dict[str, str]] = {
    "customers": {"name": "name", "national_id": "national_id", "company_name": "company",
                  "registration_number": "identifier", "tax_id": "identifier",
                  "date_of_birth": "birth_date"},
    "reference_customers": {"name": "name", "national_id": "national_id",
                            "company_name": "company", "contacts": "json",
                            "date_of_birth": "birth_date"},
    "phones": {"number": "phone", "number_e164": "phone", "notes": "text"},
    "addresses": {"line1": "address", "line2": "address", "notes": "text",
                  "lat": "coordinate", "lon": "coordinate"},
    "emails": {"address": "email", "notes": "text"},
    "users": {"full_name": "name", "email": "email"},
    "agencies": {"contact": "text"},
    "actions": {"notes": "text", "lat": "coordinate", "lon": "coordinate"},
    "cases": {"notes": "text"},
    "master_note_versions": {"text": "text"},
    "promises": {"notes": "text"},
    "visits": {"notes": "text", "review_note": "text", "checkin_lat": "coordinate",
               "checkin_lon": "coordinate"},
    "payment_plans": {"reason": "text", "cancel_reason": "text"},
    "collaterals": {"property_address": "full_address", "license_plate": "identifier",
                    "chassis_number": "identifier", "engine_number": "identifier",
                    "land_certificate_number": "identifier", "description": "text"},
    "loan_applications": {"employer": "company"},
    "call_records": {"phone": "phone"},
    "messages": {"recipient": "recipient"},
    "documents": {"original_name": "filename"},
    "api_tokens": {"note": "text"},
    "product_owner_moves": {"note": "text"},
    "discrepancies": {"resolution": "text"},
    # reasons people type (a code column is not here: it holds no one's words)
    "case_status_changes": {"reason": "text"},
    "case_assignments": {"reason": "text"},
    "placements": {"reason": "text", "end_reason": "text"},
    "integration_settings": {"change_reason": "text"},
    "integration_runs": {"note": "text"},
}

# Columns whose names look personal but hold none (codes, product words, staff logins, the
# product's own templates): tests/integration/test_vault_masking.py requires every text column
# whose name looks personal to be in PERSONAL_COLUMNS or here.
NOT_PERSONAL: set[str] = {
    "agencies.name", "api_tokens.name", "teams.name", "strategies.name", "strategies.description",
    "strategy_segments.name", "strategy_variants.name", "strategy_steps.template_code",
    "message_templates.name", "message_templates.body_en", "message_templates.body_vi",
    "users.username", "users.phone_extension", "camt_imports.filename",
    "print_batch_letters.filename", "webhook_receipts.body_sha256",
    "agent_locations.implausible_reason", "agent_status_events.reason",
    "call_records.unmatched_reason", "camt_import_transactions.reason",
    "messages.hold_reason", "payments.failure_reason", "rejected_locations.reason",
    "feature_flags.name", "feature_flag_teams.flag_name",
    # masked by occurrence (the registered values inside them are replaced)
    "messages.body", "notifications.body", "payments.raw_body", "rejected_notifications.body",
    "quarantined_records.reason", "audit_log.ip_address", "document_downloads.ip_address",
}

# Keys of JSON objects (any depth, any JSON column) whose string values are personal.
JSON_KEYS: dict[str, str] = {
    "name": "name", "full_name": "name", "customer_name": "name", "contact_name": "name",
    "phone": "phone", "phone_number": "phone", "mobile": "phone", "msisdn": "phone",
    "number_e164": "phone", "email": "email", "national_id": "national_id",
    "id_number": "national_id", "legal_id": "national_id", "address": "full_address",
    "line1": "address", "line2": "address", "notes": "text", "note": "text",
    "employer": "company", "company_name": "company", "recipient": "recipient",
}
