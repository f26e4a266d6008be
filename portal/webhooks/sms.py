"""SMS delivery reports: ``POST /api/v1/sms/delivery-reports``, signed like the product's
other webhooks (portal/signing.py: secrets ``SMS_WEBHOOK_SECRETS``, scheme
``SMS_WEBHOOK_SCHEME``: Standard Webhooks or crm-hmac).

One report per request (docs/integrations.md, "SMS gateway")::

    {"id": "<provider id>", "reference": "msg-<message id>", "status": "delivered" | "failed",
     "error": {"code": "...", "message": "..."} | null, "occurred_at": "2026-12-07T03:00:00Z"}

The message is found by the gateway's id (``messages.provider_id``); it becomes delivered or
failed. Idempotent: a report repeated (or arriving after the message's final state) changes
nothing and is answered 200 with the message's state. 400 an unreadable report (the field at
fault), 401 a bad signature, 404 an id the portal never sent, 413 a body over
``SMS_WEBHOOK_MAX_BYTES``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from flask import current_app, jsonify, request
from sqlalchemy import select

from portal import clock, signing
from portal.extensions import db
from portal.messages.operations import apply_report
from portal.models import Message
from portal.permissions.decorators import public
from portal.text import first_unstorable
from portal.webhooks.views import bp

log = logging.getLogger(__name__)
DEFAULT_MAX_BYTES = 64 * 1024
REPORT_STATUSES = ("delivered", "failed")


def _refused(status: int, code: str, message: str, field: str | None):
    response = jsonify({"error": {"code": code, "message": message, "field": field}})
    response.status_code = status
    return response


def _when(raw) -> datetime | None:
    if raw in (None, ""):
        return None
    moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@bp.post("/sms/delivery-reports")
@public
def sms_delivery_report():
    config = current_app.config
    limit = int(config.get("SMS_WEBHOOK_MAX_BYTES") or DEFAULT_MAX_BYTES)
    announced = request.content_length or 0
    body = b"" if announced > limit else request.stream.read(limit + 1)
    if announced > limit or len(body) > limit:
        return _refused(413, "body_too_large", f"the body is larger than {limit} bytes",
                        "body")
    try:
        signing.verify_message(request.headers, body, config.get("SMS_WEBHOOK_SECRETS"),
                               schemes=signing.parse_schemes(config.get("SMS_WEBHOOK_SCHEME")))
    except signing.SignatureError as exc:
        log.warning("sms delivery report refused", extra={"code": exc.code})
        return jsonify(exc.to_json()), 401
    try:
        payload = json.loads(body or b"null")
    except (ValueError, RecursionError):
        return _refused(400, "bad_json", "the body is not JSON", "body")
    if not isinstance(payload, dict):
        return _refused(400, "bad_request", "the body must be a JSON object", "body")
    where = first_unstorable(payload)
    if where is not None:
        return _refused(400, "bad_field", f"{where} holds a NUL or an invalid character", where)
    provider_id = payload.get("id")
    if not isinstance(provider_id, str) or not provider_id.strip() or len(provider_id) > 100:
        return _refused(400, "bad_field", "id must be the gateway's message id (a string)",
                        "id")
    status = payload.get("status")
    if status not in REPORT_STATUSES:
        return _refused(400, "bad_field", "status must be delivered or failed", "status")
    try:
        at = _when(payload.get("occurred_at")) or clock.now()
    except (TypeError, ValueError):
        return _refused(400, "bad_field", "occurred_at must be an ISO 8601 time",
                        "occurred_at")
    error = payload.get("error")
    if error is not None and not isinstance(error, dict):
        return _refused(400, "bad_field", "error must be an object or null", "error")
    detail = None
    if error:
        detail = " ".join(str(error.get(k)) for k in ("code", "message") if error.get(k))
    message = db.session.scalar(
        select(Message).where(Message.channel == "sms", Message.provider_id == provider_id)
        .with_for_update())
    if message is None:
        db.session.rollback()
        return _refused(404, "unknown_message", "no SMS was sent with this id", "id")
    changed = apply_report(db.session, message, status, at, detail)
    answer = {"id": provider_id, "message_id": message.id, "status": message.status,
              "changed": changed}
    db.session.commit()
    return jsonify(answer), 200
