"""Lockout after repeated login failures, counted per username in Redis.

After ``LOGIN_MAX_FAILURES`` consecutive failures for a username, the account is locked for
``LOGIN_LOCKOUT_SECONDS``: the next attempt is refused even with the right password. A
successful login resets the count. Keys: ``crm:login:failures:<username>`` and
``crm:login:locked:<username>``.

If Redis is unreachable, logins still work (fail open) and the outage is logged: refusing every
login because a counter is unavailable would lock the whole bank out.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from flask_babel import ngettext
from redis import Redis
from redis.exceptions import RedisError

from portal.extensions import get_redis

log = logging.getLogger(__name__)

KEY_PREFIX = "crm:login"


def normalize_username(username: str) -> str:
    return (username or "").strip().lower()


def failures_key(username: str) -> str:
    return f"{KEY_PREFIX}:failures:{normalize_username(username)}"


def lock_key(username: str) -> str:
    return f"{KEY_PREFIX}:locked:{normalize_username(username)}"


@dataclass(frozen=True)
class Lock:
    seconds_left: int

    @property
    def minutes_left(self) -> int:
        return max(1, math.ceil(self.seconds_left / 60))

    @property
    def message(self) -> str:
        return ngettext("Account locked, try again in %(num)d minute.",
                        "Account locked, try again in %(num)d minutes.", self.minutes_left)


class LoginProtection:
    def __init__(self, redis: Redis | None, max_failures: int, lockout_seconds: int):
        self.redis = redis
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds

    def current_lock(self, username: str) -> Lock | None:
        """The lock on ``username``, or None when it may try to log in."""
        if self.redis is None:
            return None
        try:
            ttl = self.redis.ttl(lock_key(username))
        except RedisError as exc:
            log.warning("login lockout check skipped, Redis unavailable: %s", exc)
            return None
        if ttl is None or ttl == -2:  # no key
            return None
        if ttl == -1:  # a lock without expiry should not exist; treat it as a full lockout
            self.redis.expire(lock_key(username), self.lockout_seconds)
            ttl = self.lockout_seconds
        return Lock(int(ttl))

    def record_failure(self, username: str) -> Lock | None:
        """Count a failure; returns the new Lock when this failure locks the account."""
        if self.redis is None:
            return None
        try:
            pipe = self.redis.pipeline()
            pipe.incr(failures_key(username))
            pipe.expire(failures_key(username), self.lockout_seconds)
            count = pipe.execute()[0]
            if count >= self.max_failures:
                pipe = self.redis.pipeline()
                pipe.set(lock_key(username), count, ex=self.lockout_seconds)
                pipe.delete(failures_key(username))
                pipe.execute()
                return Lock(self.lockout_seconds)
        except RedisError as exc:
            log.warning("login failure not counted, Redis unavailable: %s", exc)
        return None

    def failures(self, username: str) -> int:
        if self.redis is None:
            return 0
        try:
            return int(self.redis.get(failures_key(username)) or 0)
        except RedisError as exc:
            log.warning("login failure count unavailable, Redis unavailable: %s", exc)
            return 0

    def record_success(self, username: str) -> None:
        if self.redis is None:
            return
        try:
            self.redis.delete(failures_key(username))
        except RedisError as exc:
            log.warning("login failure count not reset, Redis unavailable: %s", exc)

    def unlock(self, username: str) -> None:
        """Lift a lock (admin action)."""
        if self.redis is None:
            return
        self.redis.delete(lock_key(username), failures_key(username))


def from_app(app) -> LoginProtection:
    """The protection configured for ``app`` (LOGIN_MAX_FAILURES, LOGIN_LOCKOUT_SECONDS)."""

    try:
        redis = get_redis()
    except RuntimeError as exc:  # REDIS_URL not configured
        log.warning("login lockout disabled: %s", exc)
        redis = None
    return LoginProtection(
        redis,
        int(app.config.get("LOGIN_MAX_FAILURES", 5)),
        int(app.config.get("LOGIN_LOCKOUT_SECONDS", 900)),
    )
