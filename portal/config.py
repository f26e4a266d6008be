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
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    REDIS_URL = os.environ.get("REDIS_URL")
    BANK_TIMEZONE = os.environ.get("BANK_TIMEZONE", "Asia/Ho_Chi_Minh")
    BANK_CURRENCY = os.environ.get("BANK_CURRENCY", "VND")

    # Sessions and cookies
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", True)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", True)
    REMEMBER_COOKIE_HTTPONLY = True
    PERMANENT_SESSION_LIFETIME = timedelta(hours=int(os.environ.get("SESSION_HOURS", "10")))

    # CSRF (Flask-WTF): HTMX sends the token in the X-CSRFToken header
    WTF_CSRF_TIME_LIMIT = None
    WTF_CSRF_SSL_STRICT = _bool("WTF_CSRF_SSL_STRICT", False)

    # Login protection
    LOGIN_MAX_FAILURES = int(os.environ.get("LOGIN_MAX_FAILURES", "5"))
    LOGIN_LOCKOUT_SECONDS = int(os.environ.get("LOGIN_LOCKOUT_SECONDS", "900"))
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "30 per minute")

    # Rate limiter storage (Flask-Limiter); defaults to REDIS_URL
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or REDIS_URL or "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_KEY_PREFIX = "crm:ratelimit"
    # Redis down must not take logins down: fall back to in-process limits and log the error
    RATELIMIT_SWALLOW_ERRORS = True
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True

    # Agent workspace
    CASE_LOCK_MINUTES = int(os.environ.get("CASE_LOCK_MINUTES", "10"))
    PROMISE_MAX_DAYS = int(os.environ.get("PROMISE_MAX_DAYS", "30"))
    # seconds an agent's queue counts are kept in Redis (0: count on every page)
    QUEUE_COUNTS_TTL = int(os.environ.get("QUEUE_COUNTS_TTL", "30"))

    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")

    # Demo / sandbox
    SANDBOX_ENABLED = _bool("SANDBOX_ENABLED", False)


class DevConfig(Config):
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SANDBOX_ENABLED = _bool("SANDBOX_ENABLED", True)
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")


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


CONFIGS = {"production": Config, "development": DevConfig, "testing": TestConfig}


def config_from_env() -> type[Config]:
    return CONFIGS.get(os.environ.get("PORTAL_ENV", "production"), Config)
