"""Configuration read from the environment (one place; the README lists every variable)."""

from __future__ import annotations

import os
from datetime import timedelta


def normalize_database_url(url: str | None) -> str | None:
    """Use the psycopg 3 driver whatever form the URL was given in."""
    if not url:
        return url
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    """Production-safe defaults; every value can be overridden from the environment."""

    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-secret-change-me")
    SQLALCHEMY_DATABASE_URI = normalize_database_url(os.environ.get("DATABASE_URL"))
    # one pooled connection per gunicorn thread and a spare or two: fewer, and a busy worker opens
    # and closes an overflow connection for many of its requests
    SQLALCHEMY_ENGINE_OPTIONS = {
        "pool_size": int(os.environ.get("DB_POOL_SIZE")
                         or int(os.environ.get("GUNICORN_THREADS", "4")) + 2),
        "max_overflow": int(os.environ.get("DB_POOL_OVERFLOW", "10")),
    }
    # connections are pinged when they leave the pool after resting this long (portal/db_ping.py)
    DB_PING_AFTER_IDLE_SECONDS = float(os.environ.get("DB_PING_AFTER_IDLE_SECONDS", "1"))
    REDIS_URL = os.environ.get("REDIS_URL")
    BANK_TIMEZONE = os.environ.get("BANK_TIMEZONE", "Asia/Ho_Chi_Minh")
    BANK_CURRENCY = os.environ.get("BANK_CURRENCY", "VND")
    # The language of a user who has not picked one (portal/i18n.py): "vi" or "en"
    DEFAULT_LANGUAGE = os.environ.get("DEFAULT_LANGUAGE", "vi")

    # Sessions and cookies
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", True)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", True)
    REMEMBER_COOKIE_HTTPONLY = True
    PERMANENT_SESSION_LIFETIME = timedelta(hours=int(os.environ.get("SESSION_HOURS", "10")))

    # Request size: the largest body any page posts is the assignment CSV (2 MB file, then
    # its text re-posted as a form field on apply); API and webhook routes keep their own,
    # smaller limits (PAYMENT_WEBHOOK_MAX_BYTES, GPS batch size). Larger: 413.
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(4 * 1024 * 1024)))
    MAX_FORM_MEMORY_SIZE = MAX_CONTENT_LENGTH  # Flask's default (500 kB) is below that CSV

    # Security headers (portal/security_headers.py, docs/security.md). HSTS is sent only on a
    # request that came over TLS; PROXY_FIX_HOPS: how many proxies in front set a trusted
    # X-Forwarded-For/-Proto/-Host (0: none; gunicorn's FORWARDED_ALLOW_IPS also sets https)
    HSTS_SECONDS = int(os.environ.get("HSTS_SECONDS", str(365 * 24 * 3600)))
    PROXY_FIX_HOPS = int(os.environ.get("PROXY_FIX_HOPS", "0"))

    # CSRF (Flask-WTF): HTMX sends the token in the X-CSRFToken header
    WTF_CSRF_TIME_LIMIT = None
    WTF_CSRF_SSL_STRICT = _bool("WTF_CSRF_SSL_STRICT", False)

    # Login protection
    LOGIN_MAX_FAILURES = int(os.environ.get("LOGIN_MAX_FAILURES", "5"))
    LOGIN_LOCKOUT_SECONDS = int(os.environ.get("LOGIN_LOCKOUT_SECONDS", "900"))
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "30 per minute")

    # Password policy (portal/auth/passwords.py): the shortest password, how many of a user's
    # last passwords may not be chosen again, and the list of common passwords refused (empty:
    # the list shipped in portal/auth/common_passwords.txt)
    PASSWORD_MIN_LENGTH = int(os.environ.get("PASSWORD_MIN_LENGTH", "10"))
    PASSWORD_REUSE_DEPTH = int(os.environ.get("PASSWORD_REUSE_DEPTH", "5"))
    PASSWORD_COMMON_LIST = os.environ.get("PASSWORD_COMMON_LIST", "")

    # Rate limiter storage (Flask-Limiter); defaults to REDIS_URL
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or REDIS_URL or "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_KEY_PREFIX = "crm:ratelimit"
    # Redis down must not take logins down: fall back to in-process limits and log the error
    RATELIMIT_SWALLOW_ERRORS = True
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True

    # Read API (issue 10): GraphQL limits, refused before execution (portal/api/graphql.py)
    GRAPHQL_MAX_DEPTH = int(os.environ.get("GRAPHQL_MAX_DEPTH", "5"))
    GRAPHQL_MAX_COST = int(os.environ.get("GRAPHQL_MAX_COST", "5000"))

    # Agent workspace
    CASE_LOCK_MINUTES = int(os.environ.get("CASE_LOCK_MINUTES", "10"))
    PROMISE_MAX_DAYS = int(os.environ.get("PROMISE_MAX_DAYS", "30"))
    # seconds an agent's queue counts are kept in Redis (0: count on every page)
    QUEUE_COUNTS_TTL = int(os.environ.get("QUEUE_COUNTS_TTL", "30"))
    # what one strategy action costs the bank, for the KPIs per variant: "sms=500,letter=15000"
    # (portal.strategies.operations.UNIT_COSTS has the defaults of the others)
    STRATEGY_UNIT_COSTS = {
        key.strip(): int(value) for key, _, value in (
            part.partition("=") for part in os.environ.get("STRATEGY_UNIT_COSTS", "").split(",")
            if "=" in part)}

    # Call centre (CTI): signed inbound events, outbound REST (status, click-to-call, call list)
    CTI_WEBHOOK_SECRETS = os.environ.get("CTI_WEBHOOK_SECRETS", "")
    # signing scheme(s) of the call centre: crm-hmac (X-Signature), standard (Standard Webhooks,
    # whsec_ secrets), or "standard,crm-hmac" while it moves from one to the other
    CTI_WEBHOOK_SCHEME = os.environ.get("CTI_WEBHOOK_SCHEME", "crm-hmac")
    CTI_WEBHOOK_MAX_BYTES = int(os.environ.get("CTI_WEBHOOK_MAX_BYTES", "65536"))  # larger: 413
    CALLCENTRE_URL = os.environ.get("CALLCENTRE_URL")
    CALLCENTRE_API_KEY = os.environ.get("CALLCENTRE_API_KEY")
    CALLCENTRE_TIMEOUT = float(os.environ.get("CALLCENTRE_TIMEOUT", "3"))
    CTI_ASYNC_COMMIT = _bool("CTI_ASYNC_COMMIT", True)  # see portal/webhooks/cti.py
    # agent-status board: polling period and "stuck in status" thresholds (minutes per status)
    BOARD_POLL_SECONDS = int(os.environ.get("BOARD_POLL_SECONDS", "5"))
    BOARD_STUCK_MINUTES = os.environ.get("BOARD_STUCK_MINUTES",
                                         "on_call=20,wrap_up=5,break=20")

    # Field work: GPS ingest, visit verification, map (issue 8)
    GPS_API_URL = os.environ.get("GPS_API_URL")  # the GPS tracking system; unset: no forwarding
    GPS_API_KEY = os.environ.get("GPS_API_KEY", "")
    GPS_TIMEOUT_SECONDS = float(os.environ.get("GPS_TIMEOUT_SECONDS", "5"))
    GPS_FORWARD_BATCH = int(os.environ.get("GPS_FORWARD_BATCH", "500"))
    LOCATION_FLAG_ACCURACY_M = float(os.environ.get("LOCATION_FLAG_ACCURACY_M", "500"))
    LOCATION_MAX_ACCURACY_M = float(os.environ.get("LOCATION_MAX_ACCURACY_M", "10000"))
    LOCATION_FUTURE_TOLERANCE_S = int(os.environ.get("LOCATION_FUTURE_TOLERANCE_S", "120"))
    LOCATION_MAX_AGE_DAYS = int(os.environ.get("LOCATION_MAX_AGE_DAYS", "7"))
    # a point ahead of our clock by more than the tolerance but at most this is refused for now
    # (409 to OsmAnd trackers, which send it again); beyond, for good (kept as rejected)
    LOCATION_FUTURE_RETRY_S = int(os.environ.get("LOCATION_FUTURE_RETRY_S", "900"))
    # the zone of an OsmAnd time without one (yyyy-MM-dd HH:mm:ss): Traccar reads it in its
    # server's zone, UTC by default
    OSMAND_NAIVE_TIMEZONE = os.environ.get("OSMAND_NAIVE_TIMEZONE", "UTC")
    LOCATION_ASYNC_COMMIT = _bool("LOCATION_ASYNC_COMMIT", True)  # positions: no WAL wait
    # implausible positions (portal/field/plausibility.py): outside this area (empty: Vietnam,
    # its islands included; "off"; boxes "south,west,north,east;…"; GeoJSON inline or a file)
    GPS_SERVICE_AREA = os.environ.get("GPS_SERVICE_AREA", "")
    GPS_MAX_SPEED_KMH = float(os.environ.get("GPS_MAX_SPEED_KMH", "150"))  # or faster than this
    VISIT_RADIUS_M = float(os.environ.get("VISIT_RADIUS_M", "200"))
    VISIT_MAX_ACCURACY_M = float(os.environ.get("VISIT_MAX_ACCURACY_M", "100"))
    FIELD_NEARBY_KM = float(os.environ.get("FIELD_NEARBY_KM", "3"))
    FIELD_STALE_MINUTES = int(os.environ.get("FIELD_STALE_MINUTES", "15"))
    FIELD_MAP_REFRESH_SECONDS = int(os.environ.get("FIELD_MAP_REFRESH_SECONDS", "10"))
    MAP_TILE_URL = os.environ.get("MAP_TILE_URL", "")  # internal tile server; empty: no tiles
    MAP_TILE_ATTRIBUTION = os.environ.get("MAP_TILE_ATTRIBUTION", "")

    # Payments (issue 6): signed webhook (two secrets during a rotation), body limit, replay
    # window; the payment system's daily transactions report for reconciliation
    PAYMENT_WEBHOOK_SECRETS = os.environ.get("PAYMENT_WEBHOOK_SECRETS", "")
    PAYMENT_WEBHOOK_SCHEME = os.environ.get("PAYMENT_WEBHOOK_SCHEME", "crm-hmac")  # as CTI's
    PAYMENT_WEBHOOK_MAX_BYTES = int(os.environ.get("PAYMENT_WEBHOOK_MAX_BYTES", "65536"))
    PAYMENT_WEBHOOK_WINDOW_SECONDS = int(os.environ.get("PAYMENT_WEBHOOK_WINDOW_SECONDS", "300"))
    # how long both webhooks remember a message's answer (portal/webhook_receipts.py)
    WEBHOOK_RECEIPT_DAYS = int(os.environ.get("WEBHOOK_RECEIPT_DAYS", "7"))
    PAYMENTS_API_URL = os.environ.get("PAYMENTS_API_URL")
    PAYMENTS_API_KEY = os.environ.get("PAYMENTS_API_KEY", "")
    PAYMENTS_TIMEOUT_SECONDS = float(os.environ.get("PAYMENTS_TIMEOUT_SECONDS", "10"))
    PAYMENTS_LIVE_POLL_SECONDS = int(os.environ.get("PAYMENTS_LIVE_POLL_SECONDS", "5"))
    # camt.053/054 files (portal/payments/camt_import.py): the currencies taken (others are
    # skipped), how a reference is compared with loan numbers (compact: spaces removed, upper
    # case; exact), the rule for the unstructured remittance (a regex; its "loan" group must
    # be a known loan; empty: the default for LD/LN/AA + 10 characters), the upload limit
    CAMT_CURRENCIES = os.environ.get("CAMT_CURRENCIES", "")  # empty: BANK_CURRENCY
    CAMT_REFERENCE_TRANSFORM = os.environ.get("CAMT_REFERENCE_TRANSFORM", "compact")
    CAMT_UNSTRUCTURED_PATTERN = os.environ.get("CAMT_UNSTRUCTURED_PATTERN", "")
    CAMT_UPLOAD_MAX_BYTES = int(os.environ.get("CAMT_UPLOAD_MAX_BYTES", str(3 * 1024 * 1024)))

    # Pay by VietQR (portal/messages/vietqr.py, issue 23): the bank's NAPAS BIN and repayment
    # account the code pays into (dev defaults are placeholders), the public address of the
    # portal that SMS and e-mail links point at, and how long a pay link stays valid
    VIETQR_BANK_BIN = os.environ.get("VIETQR_BANK_BIN", "970436")
    VIETQR_BANK_NAME = os.environ.get("VIETQR_BANK_NAME", "Ngân hàng TMCP Ngoại thương Việt Nam")
    VIETQR_ACCOUNT = os.environ.get("VIETQR_ACCOUNT", "0011009999999")
    VIETQR_ACCOUNT_NAME = os.environ.get("VIETQR_ACCOUNT_NAME", "NGAN HANG THU NO VAY")
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    PAY_LINK_MAX_AGE_DAYS = int(os.environ.get("PAY_LINK_MAX_AGE_DAYS", "14"))
    PAY_PAGE_RATE_LIMIT = os.environ.get("PAY_PAGE_RATE_LIMIT", "30 per minute")
    # Letters (portal/messages/letters.py): the letterhead and where print batches are written
    # (empty: <instance folder>/print)
    LETTER_BANK_NAME = os.environ.get("LETTER_BANK_NAME",
                                      "Ngân hàng TMCP Ví dụ — Trung tâm Thu hồi nợ")
    LETTER_BANK_ADDRESS = os.environ.get("LETTER_BANK_ADDRESS",
                                         "198 Trần Quang Khải, Hoàn Kiếm, Hà Nội")
    LETTER_BANK_HOTLINE = os.environ.get("LETTER_BANK_HOTLINE", "1900 0000")
    PRINT_BATCH_DIR = os.environ.get("PRINT_BATCH_DIR", "")

    # Documents (portal/documents): the largest file taken (checked while it streams in; the
    # upload routes raise the request limit to this plus a little for the form fields), and
    # the directory of the document store (empty: <instance folder>/documents)
    DOCUMENT_MAX_BYTES = int(os.environ.get("DOCUMENT_MAX_BYTES", str(10 * 1024 * 1024)))
    DOCUMENT_STORAGE_DIR = os.environ.get("DOCUMENT_STORAGE_DIR", "")

    # Backups and masked copies (portal/vault, docs/operations.md "Backup and restore"): where
    # the scheduled backup writes (empty: <instance folder>/backups) and how many it keeps (the
    # newest BACKUP_KEEP_COUNT always, others until BACKUP_KEEP_DAYS old); the secret that keys
    # the masked copies' pseudonyms (the same key gives the same pseudonyms on every copy)
    BACKUP_DIR = os.environ.get("BACKUP_DIR", "")
    BACKUP_KEEP_DAYS = int(os.environ.get("BACKUP_KEEP_DAYS", "7"))
    BACKUP_KEEP_COUNT = int(os.environ.get("BACKUP_KEEP_COUNT", "7"))
    # the ops page (Workers and queues) marks the backups stale when the newest is older: a
    # nightly job plus a few hours' slack
    BACKUP_STALE_HOURS = float(os.environ.get("BACKUP_STALE_HOURS", "26"))
    MASKING_KEY = os.environ.get("MASKING_KEY", "dev-masking-key-not-secret")

    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")

    # Ops (issue 9, docs/operations.md): circuit breakers, alerts, log lines by correlation id
    BREAKER_FAILURES = int(os.environ.get("BREAKER_FAILURES", "5"))  # consecutive, to open
    BREAKER_COOLDOWN_SECONDS = float(os.environ.get("BREAKER_COOLDOWN_SECONDS", "60"))
    OPS_POLL_SECONDS = int(os.environ.get("OPS_POLL_SECONDS", "10"))  # health page refresh
    ALERT_WEBHOOK_URL = os.environ.get("ALERT_WEBHOOK_URL")  # the bank's paging system; unset: off
    ALERT_WEBHOOK_SECRET = os.environ.get("ALERT_WEBHOOK_SECRET", "")
    ALERT_WEBHOOK_TIMEOUT = float(os.environ.get("ALERT_WEBHOOK_TIMEOUT", "5"))
    ALERT_DOWN_MINUTES = int(os.environ.get("ALERT_DOWN_MINUTES", "10"))
    ALERT_DISCREPANCY_THRESHOLD = int(os.environ.get("ALERT_DISCREPANCY_THRESHOLD", "10"))
    ALERT_QUEUE_DEPTH = int(os.environ.get("ALERT_QUEUE_DEPTH", "1000"))
    ALERT_HEARTBEAT_SECONDS = int(os.environ.get("ALERT_HEARTBEAT_SECONDS", "480"))
    # push integrations' traffic (portal/ops/traffic.py): refusal alarm and silence alarm
    TRAFFIC_REFUSAL_RATE = float(os.environ.get("TRAFFIC_REFUSAL_RATE", "0.1"))
    TRAFFIC_REFUSAL_MIN = int(os.environ.get("TRAFFIC_REFUSAL_MIN", "5"))
    TRAFFIC_WINDOW_HOURS = int(os.environ.get("TRAFFIC_WINDOW_HOURS", "2"))
    TRAFFIC_SILENCE_MINUTES = os.environ.get("TRAFFIC_SILENCE_MINUTES",
                                             "PAYMENTS=60,CTI=30,GPS=30")
    BANK_WORKING_HOURS = os.environ.get("BANK_WORKING_HOURS", "08:00-17:30")
    BANK_WORKING_DAYS = os.environ.get("BANK_WORKING_DAYS", "Mon,Tue,Wed,Thu,Fri")
    LOG_CAPTURE = _bool("LOG_CAPTURE", True)  # keep recent log lines per correlation id
    LOG_CAPTURE_MAX_LINES = int(os.environ.get("LOG_CAPTURE_MAX_LINES", "500"))
    LOG_CAPTURE_TTL_DAYS = int(os.environ.get("LOG_CAPTURE_TTL_DAYS", "7"))

    # Distributed tracing (issue 24, portal/tracing.py, docs/operations.md "Tracing"): spans are
    # exported by OTLP/HTTP only when an endpoint is set (the OpenTelemetry variables: the traces
    # endpoint as is, else <endpoint>/v1/traces); service.name is <OTEL_SERVICE_NAME>-<kind>
    # (web, worker, cli). OTEL_EXPORTER_OTLP_HEADERS and OTEL_TRACES_SAMPLER are read by the SDK.
    OTEL_EXPORTER_OTLP_ENDPOINT = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    OTEL_EXPORTER_OTLP_TIMEOUT = float(os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT", "10"))
    OTEL_SERVICE_NAME = os.environ.get("OTEL_SERVICE_NAME", "crm")
    OTEL_ENVIRONMENT = os.environ.get("OTEL_ENVIRONMENT", "")

    # Outbound messages (issue 23): SMS gateway, SMTP, dispatcher retries (portal/messages)
    SMS_GATEWAY_URL = os.environ.get("SMS_GATEWAY_URL")  # unset: SMS wait and fail after retries
    SMS_GATEWAY_API_KEY = os.environ.get("SMS_GATEWAY_API_KEY", "")
    SMS_GATEWAY_TIMEOUT = float(os.environ.get("SMS_GATEWAY_TIMEOUT", "5"))
    # where the gateway posts delivery reports (the portal's /api/v1/sms/delivery-reports)
    SMS_DELIVERY_REPORT_URL = os.environ.get("SMS_DELIVERY_REPORT_URL")
    SMS_WEBHOOK_SECRETS = os.environ.get("SMS_WEBHOOK_SECRETS", "")
    SMS_WEBHOOK_SCHEME = os.environ.get("SMS_WEBHOOK_SCHEME", "standard")
    SMS_WEBHOOK_MAX_BYTES = int(os.environ.get("SMS_WEBHOOK_MAX_BYTES", "65536"))
    SMTP_HOST = os.environ.get("SMTP_HOST")  # unset: e-mails wait and fail after retries
    SMTP_PORT = int(os.environ.get("SMTP_PORT", "25"))
    SMTP_USERNAME = os.environ.get("SMTP_USERNAME")
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD")
    SMTP_STARTTLS = _bool("SMTP_STARTTLS", False)
    SMTP_TIMEOUT = float(os.environ.get("SMTP_TIMEOUT", "10"))
    MAIL_FROM = os.environ.get("MAIL_FROM", "thu-no@example.vn")
    MAIL_FROM_NAME = os.environ.get("MAIL_FROM_NAME", "Ngân hàng — Thu hồi nợ")
    MESSAGES_MAX_ATTEMPTS = int(os.environ.get("MESSAGES_MAX_ATTEMPTS", "5"))
    MESSAGES_RETRY_SECONDS = int(os.environ.get("MESSAGES_RETRY_SECONDS", "60"))  # doubling
    # a sent SMS without a delivery report this long is asked about (messages.reconcile_reports)
    MESSAGES_REPORT_WAIT_MINUTES = int(os.environ.get("MESSAGES_REPORT_WAIT_MINUTES", "60"))
    MESSAGES_PAYMENT_INSTRUCTIONS_VI = os.environ.get("MESSAGES_PAYMENT_INSTRUCTIONS_VI")
    MESSAGES_PAYMENT_INSTRUCTIONS_EN = os.environ.get("MESSAGES_PAYMENT_INSTRUCTIONS_EN")

    # Demo / sandbox
    SANDBOX_ENABLED = _bool("SANDBOX_ENABLED", False)

    # Bank synchronisation (integrations/sync.py; docs/integrations.md)
    T24_INBOX_DIR = os.environ.get("T24_INBOX_DIR", "instance/t24")
    # how T24's files are read (integrations/t24/mapping.py): a shipped profile (crm-json,
    # t24-dfe) or the path of a bank's own mapping file
    T24_MAPPING_PROFILE = os.environ.get("T24_MAPPING_PROFILE", "crm-json")
    T24_SFTP_HOST = os.environ.get("T24_SFTP_HOST")  # unset: no SFTP fetch step
    T24_SFTP_PORT = int(os.environ.get("T24_SFTP_PORT", "22"))
    T24_SFTP_USER = os.environ.get("T24_SFTP_USER")
    T24_SFTP_PASSWORD = os.environ.get("T24_SFTP_PASSWORD")
    T24_SFTP_KEY_FILE = os.environ.get("T24_SFTP_KEY_FILE")
    T24_SFTP_REMOTE_DIR = os.environ.get("T24_SFTP_REMOTE_DIR", "outbox")
    T24_SFTP_KNOWN_HOSTS = os.environ.get("T24_SFTP_KNOWN_HOSTS")
    # T24's per-customer enquiry (integrations/t24/enquiry.py): the bank's enquiry service in
    # production, the sandbox twin (integrations/sandbox/t24_enquiry.py) in development
    T24_ENQUIRY_URL = os.environ.get("T24_ENQUIRY_URL")
    T24_ENQUIRY_API_KEY = os.environ.get("T24_ENQUIRY_API_KEY")
    # the mapping profile of the enquiry's records; default: the daily files' (one mapping, one
    # set of natural keys)
    T24_ENQUIRY_PROFILE = os.environ.get("T24_ENQUIRY_PROFILE")
    W4_API_URL = os.environ.get("W4_API_URL")
    W4_API_KEY = os.environ.get("W4_API_KEY")
    LOS_API_URL = os.environ.get("LOS_API_URL")
    LOS_API_TOKEN = os.environ.get("LOS_API_TOKEN")
    SYNC_PAGE_SIZE = int(os.environ.get("SYNC_PAGE_SIZE", "200"))
    SYNC_HTTP_TIMEOUT = float(os.environ.get("SYNC_HTTP_TIMEOUT", "10"))
    SYNC_HTTP_RETRIES = int(os.environ.get("SYNC_HTTP_RETRIES", "4"))
    # refresh one customer now (integrations/refresh.py): an agent waits, so few, short tries;
    # at most one refresh of a customer per REFRESH_CUSTOMER_MINUTES, REFRESH_USER_PER_MINUTE
    # refreshes per user and minute (on the product clock)
    REFRESH_HTTP_TIMEOUT = float(os.environ.get("REFRESH_HTTP_TIMEOUT", "5"))
    REFRESH_HTTP_RETRIES = int(os.environ.get("REFRESH_HTTP_RETRIES", "1"))
    REFRESH_CUSTOMER_MINUTES = int(os.environ.get("REFRESH_CUSTOMER_MINUTES", "5"))
    REFRESH_USER_PER_MINUTE = int(os.environ.get("REFRESH_USER_PER_MINUTE", "3"))
    SYNC_RETRIES = int(os.environ.get("SYNC_RETRIES", "3"))  # whole-run retries
    SYNC_RETRY_BACKOFF = float(os.environ.get("SYNC_RETRY_BACKOFF", "30"))  # seconds, doubling
    # a run that would give more than this share of the products it received to another
    # customer holds those moves for an ops decision (integrations/owner_moves.py)
    SYNC_OWNER_MOVES_HOLD_SHARE = float(os.environ.get("SYNC_OWNER_MOVES_HOLD_SHARE", "0.05"))


class DevConfig(Config):
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SANDBOX_ENABLED = _bool("SANDBOX_ENABLED", True)
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")
    # the sandbox twins of `make run` (integrations/sandbox)
    T24_ENQUIRY_URL = os.environ.get("T24_ENQUIRY_URL", "http://127.0.0.1:8708")
    T24_ENQUIRY_API_KEY = os.environ.get("T24_ENQUIRY_API_KEY", "sandbox-t24-enquiry-key")
    W4_API_URL = os.environ.get("W4_API_URL", "http://127.0.0.1:8701")
    W4_API_KEY = os.environ.get("W4_API_KEY", "sandbox-w4-key")
    LOS_API_URL = os.environ.get("LOS_API_URL", "http://127.0.0.1:8702")
    LOS_API_TOKEN = os.environ.get("LOS_API_TOKEN", "sandbox-los-token")
    GPS_API_URL = os.environ.get("GPS_API_URL", "http://127.0.0.1:8705")  # sandbox GPS
    GPS_API_KEY = os.environ.get("GPS_API_KEY", "sandbox-gps-key")
    MAP_TILE_URL = os.environ.get("MAP_TILE_URL",
                                  "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    MAP_TILE_ATTRIBUTION = os.environ.get("MAP_TILE_ATTRIBUTION", "© OpenStreetMap")
    # the sandbox call centre of `make run` (integrations/sandbox/callcentre_server.py)
    # the sandboxes sign in either scheme (their --scheme): both accepted, with a secret each
    CTI_WEBHOOK_SECRETS = os.environ.get(
        "CTI_WEBHOOK_SECRETS", "sandbox-cti-secret,whsec_c2FuZGJveC1jdGktc2VjcmV0")
    CTI_WEBHOOK_SCHEME = os.environ.get("CTI_WEBHOOK_SCHEME", "crm-hmac,standard")
    CALLCENTRE_URL = os.environ.get("CALLCENTRE_URL", "http://127.0.0.1:8704")
    CALLCENTRE_API_KEY = os.environ.get("CALLCENTRE_API_KEY", "sandbox-cc-key")
    # the sandbox payment system of `make run` (integrations/sandbox/payments_server.py)
    PAYMENT_WEBHOOK_SECRETS = os.environ.get(
        "PAYMENT_WEBHOOK_SECRETS", "sandbox-payments-secret,whsec_c2FuZGJveC1wYXltZW50cy1zZWNyZXQ=")
    PAYMENT_WEBHOOK_SCHEME = os.environ.get("PAYMENT_WEBHOOK_SCHEME", "crm-hmac,standard")
    PAYMENTS_API_URL = os.environ.get("PAYMENTS_API_URL", "http://127.0.0.1:8703")
    PAYMENTS_API_KEY = os.environ.get("PAYMENTS_API_KEY", "sandbox-payments-key")
    # the sandbox SMS gateway and capturing SMTP server of `make run`
    SMS_GATEWAY_URL = os.environ.get("SMS_GATEWAY_URL", "http://127.0.0.1:8707")
    SMS_GATEWAY_API_KEY = os.environ.get("SMS_GATEWAY_API_KEY", "sandbox-sms-key")
    SMS_WEBHOOK_SECRETS = os.environ.get(
        "SMS_WEBHOOK_SECRETS", "whsec_c2FuZGJveC1zbXMtc2VjcmV0,sandbox-sms-secret")
    SMS_WEBHOOK_SCHEME = os.environ.get("SMS_WEBHOOK_SCHEME", "standard,crm-hmac")
    SMTP_HOST = os.environ.get("SMTP_HOST", "127.0.0.1")
    SMTP_PORT = int(os.environ.get("SMTP_PORT", "8025"))


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_SECURE = False
    SQLALCHEMY_DATABASE_URI = normalize_database_url(os.environ.get("TEST_DATABASE_URL"))
    REDIS_URL = os.environ.get("TEST_REDIS_URL")
    RATELIMIT_STORAGE_URI = os.environ.get("TEST_REDIS_URL") or "memory://"
    LOG_FORMAT = "json"
    SANDBOX_ENABLED = True
    PAYMENT_WEBHOOK_SECRETS = "test-payments-current,test-payments-next"
    PAYMENTS_API_KEY = "test-payments-key"
    SMS_WEBHOOK_SECRETS = "whsec_dGVzdC1zbXMtc2VjcmV0"
    SMS_WEBHOOK_SCHEME = "standard,crm-hmac"
    # Tests read the portal's English words unless they choose Vietnamese (the product default,
    # checked by tests/integration/test_languages.py and the Vietnamese page walks)
    DEFAULT_LANGUAGE = "en"


CONFIGS = {"production": Config, "development": DevConfig, "testing": TestConfig}


def config_from_env() -> type[Config]:
    return CONFIGS.get(os.environ.get("PORTAL_ENV", "production"), Config)
