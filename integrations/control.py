"""Ops switches of the integrations: pause/resume (a feature flag in ``integration_settings``)
and a circuit breaker per external system (state in Redis, shared by every process).

Pause / resume
    ``is_paused("W4")`` is what jobs and webhooks ask before they work: cheap (answers are cached
    ``PAUSE_CACHE_SECONDS`` per process; pausing in this process clears the cache at once),
    False when the setting row does not exist, and False when the database cannot be read (a
    paused flag that cannot be read must not stop the bank's data). ``pause`` / ``resume`` write
    the flag with who, when and why, and an audit row, in one commit.

    A paused job returns without work (it may record a ``cancelled`` run); a paused webhook
    stores and acknowledges what it receives and defers processing until resumed: register
    ``register_resume_hook("PAYMENTS", fn)`` to process what was deferred when ops resume.

Circuit breakers
    ``breaker("W4")`` returns a :class:`Breaker`::

        closed --(BREAKER_FAILURES consecutive failures)--> open
        open --(BREAKER_COOLDOWN_SECONDS later, first caller)--> half_open (one probe)
        half_open --probe succeeds--> closed      half_open --probe fails--> open (new cool-down)

    Every transition is one Lua script on Redis (atomic across web and worker processes). When
    Redis cannot be reached the breaker fails open (``allow()`` is True): it protects external
    systems from us, it must never be the reason an integration stops. Ops may force a breaker
    open (sticky: no probes until forced closed) or closed (failures forgotten).

    Use as ``if b.allow(): ... b.record_success() / b.record_failure(err)``, as a context manager
    (``with breaker("W4"): call()`` raises :class:`BreakerOpen` when it is open), as a decorator
    (``@breaker("W4")``), or pass it to ``JsonApiClient(..., breaker=breaker("W4"))``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import text

from portal import audit, clock
from portal.extensions import db, get_redis
from portal.models import IntegrationSetting
from portal.models.enums import INTEGRATIONS

log = logging.getLogger(__name__)

PAUSE_CACHE_SECONDS = 5.0
BREAKER_STATES = ("closed", "open", "half_open")
DEFAULT_FAILURES = 5
DEFAULT_COOLDOWN = 60.0
PROBE_TIMEOUT = 120.0  # a half-open probe that never reports back frees the slot after this
KEY_PREFIX = "crm:breaker:"

_pause_cache: dict[str, tuple[float, bool]] = {}


def _name(integration: str) -> str:
    name = (integration or "").strip().upper()
    if name not in INTEGRATIONS:
        raise ValueError(f"unknown integration {integration!r}; known: {', '.join(INTEGRATIONS)}")
    return name


# --- pause / resume ------------------------------------------------------------------------------


def clear_pause_cache() -> None:
    _pause_cache.clear()


def is_paused(integration: str) -> bool:
    """Whether ops paused ``integration`` (cached a few seconds; False if unknown/unreadable)."""
    name = (integration or "").strip().upper()
    cached = _pause_cache.get(name)
    now = time.monotonic()
    if cached and now - cached[0] < PAUSE_CACHE_SECONDS:
        return cached[1]
    paused = _read_paused(name)
    _pause_cache[name] = (now, paused)
    return paused


def _read_paused(name: str) -> bool:
    try:  # a connection of its own: never touches the caller's session or transaction
        with db.engine.connect() as conn:
            enabled = conn.execute(
                text("SELECT enabled FROM integration_settings WHERE integration = :n"),
                {"n": name},
            ).scalar()
    except Exception:
        log.warning("cannot read the pause flag; treating as running",
                    extra={"integration": name}, exc_info=True)
        return False
    return enabled is False


def _set_enabled(integration: str, enabled: bool, user: Any, reason: str | None,
                 session=None):
    name = _name(integration)
    session = session or db.session
    setting = session.get(IntegrationSetting, name, with_for_update=True)
    before = None
    if setting is None:
        setting = IntegrationSetting(integration=name, enabled=True)
        session.add(setting)
    else:
        before = {"enabled": setting.enabled, "reason": setting.change_reason}
    changed = setting.enabled != enabled
    setting.enabled = enabled
    setting.changed_by_id = getattr(user, "id", None)
    setting.changed_at = clock.now()
    setting.change_reason = (reason or "").strip()[:500] or None
    audit.record(session, user, "integration.paused" if not enabled else "integration.resumed",
                 "integration", name, before=before,
                 after={"enabled": enabled, "reason": setting.change_reason})
    session.commit()
    _pause_cache.pop(name, None)
    log.warning("integration %s %s", name, "paused" if not enabled else "resumed",
                extra={"integration": name, "changed": changed,
                       "user": getattr(user, "username", None) or str(user)})
    return setting


# Called after an integration is resumed (e.g. process the webhooks deferred while paused):
# ``fn(integration, user)``; an error is logged, never raised to the person resuming.
RESUME_HOOKS: dict[str, list[Callable]] = {}


def register_resume_hook(integration: str, fn: Callable) -> None:
    """Once per function, however many apps a process builds."""
    hooks = RESUME_HOOKS.setdefault(integration.upper(), [])
    if fn not in hooks:
        hooks.append(fn)


def _run_resume_hooks(name: str, user: Any) -> None:
    for fn in RESUME_HOOKS.get(name, []):
        try:
            fn(name, user)
        except Exception:
            log.exception("resume hook failed", extra={"integration": name,
                                                       "hook": getattr(fn, "__name__", fn)})


def pause(integration: str, user: Any = None, reason: str | None = None, *, session=None):
    """Pause ``integration`` (audited, committed). Returns its IntegrationSetting."""
    return _set_enabled(integration, False, user, reason, session)


def resume(integration: str, user: Any = None, reason: str | None = None, *, session=None):
    """Resume ``integration`` (audited, committed), then run its resume hooks."""
    setting = _set_enabled(integration, True, user, reason, session)
    _run_resume_hooks(setting.integration, user)
    return setting


# --- circuit breakers ----------------------------------------------------------------------------


class BreakerOpen(Exception):
    """The breaker of an external system is open: the call was not attempted."""

    def __init__(self, system: str, retry_in: float | None = None):
        hint = f"; next probe in {retry_in:.0f} s" if retry_in else ""
        super().__init__(f"circuit breaker for {system} is open{hint}")
        self.system = system
        self.retry_in = retry_in


@dataclass
class BreakerState:
    system: str
    state: str  # closed | open | half_open
    failures: int  # consecutive failures
    opened_at: float | None
    forced: bool
    last_error: str | None
    last_failure_at: float | None
    last_success_at: float | None
    changed_at: float | None
    threshold: int
    cooldown: float

    @property
    def retry_in(self) -> float | None:
        if self.state != "open" or self.opened_at is None or self.forced:
            return None
        return max(0.0, self.opened_at + self.cooldown - time.time())

    def as_dict(self) -> dict:
        return {"system": self.system, "state": self.state, "failures": self.failures,
                "opened_at": self.opened_at, "forced": self.forced,
                "last_error": self.last_error, "threshold": self.threshold,
                "cooldown": self.cooldown}


# KEYS[1] = breaker hash; ARGV: now, threshold, cooldown, probe_timeout
# returns {allowed (0/1), state, transition or ""}
_ALLOW = """
local s = redis.call('HGET', KEYS[1], 'state') or 'closed'
local forced = redis.call('HGET', KEYS[1], 'forced') == '1'
local now = tonumber(ARGV[1])
if s == 'closed' then return {1, s, ''} end
if forced then return {0, s, ''} end
if s == 'open' then
  local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
  if now - opened >= tonumber(ARGV[3]) then
    redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', now + tonumber(ARGV[4]),
               'changed_at', now)
    return {1, 'half_open', 'half_open'}
  end
  return {0, s, ''}
end
-- half_open: one probe at a time; a probe that never reported frees the slot when it expires
local until_ = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if now >= until_ then
  redis.call('HSET', KEYS[1], 'probe_until', now + tonumber(ARGV[4]))
  return {1, s, ''}
end
return {0, s, ''}
"""

# ARGV: now ; returns {state, transition}
_SUCCESS = """
local s = redis.call('HGET', KEYS[1], 'state') or 'closed'
local now = ARGV[1]
if redis.call('HGET', KEYS[1], 'forced') == '1' then
  redis.call('HSET', KEYS[1], 'last_success_at', now)
  return {s, ''}
end
redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'last_success_at', now)
redis.call('HDEL', KEYS[1], 'probe_until', 'opened_at')
if s ~= 'closed' then
  redis.call('HSET', KEYS[1], 'changed_at', now)
  return {'closed', 'closed'}
end
return {'closed', ''}
"""

# ARGV: now, threshold, error ; returns {state, transition}
_FAILURE = """
local s = redis.call('HGET', KEYS[1], 'state') or 'closed'
local now = ARGV[1]
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'last_failure_at', now, 'last_error', ARGV[3])
if redis.call('HGET', KEYS[1], 'forced') == '1' then return {s, ''} end
if s == 'half_open' or (s == 'closed' and failures >= tonumber(ARGV[2])) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now, 'changed_at', now)
  redis.call('HDEL', KEYS[1], 'probe_until')
  return {'open', 'open'}
end
return {s, ''}
"""


def _config(key: str, default):
    if has_app_context():
        return current_app.config.get(key, default)
    return default


def _decode(value) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class Breaker:
    """The circuit breaker of one external system (see the module docstring)."""

    def __init__(self, system: str, *, failures: int | None = None,
                 cooldown: float | None = None, redis=None,
                 clock: Callable[[], float] = time.time,
                 failure_exceptions: tuple[type[BaseException], ...] = (Exception,)):
        self.system = system.strip().upper()
        self.threshold = int(failures if failures is not None
                             else _config("BREAKER_FAILURES", DEFAULT_FAILURES))
        self.cooldown = float(cooldown if cooldown is not None
                              else _config("BREAKER_COOLDOWN_SECONDS", DEFAULT_COOLDOWN))
        self._redis = redis
        self.clock = clock
        self.failure_exceptions = failure_exceptions
        self.key = KEY_PREFIX + self.system

    @property
    def redis(self):
        if self._redis is None:
            self._redis = get_redis()
        return self._redis

    def _script(self, source: str, *args) -> list | None:
        try:
            return self.redis.eval(source, 1, self.key, *args)
        except Exception:
            log.warning("circuit breaker %s: Redis unavailable, failing open", self.system,
                        extra={"integration": self.system}, exc_info=True)
            return None

    def _transition(self, transition, error: str | None = None) -> None:
        transition = _decode(transition)
        if transition:
            level = logging.WARNING if transition == "open" else logging.INFO
            log.log(level, "circuit breaker %s is now %s", self.system, transition,
                    extra={"integration": self.system, "breaker": transition,
                           "error": error})

    # -- the three calls -----------------------------------------------------------------------
    def allow(self) -> bool:
        """May a call to the system be made now? (True when Redis cannot be asked.)"""
        result = self._script(_ALLOW, self.clock(), self.threshold, self.cooldown,
                              PROBE_TIMEOUT)
        if result is None:
            return True
        self._transition(result[2])
        return bool(int(result[0]))

    def record_success(self) -> None:
        result = self._script(_SUCCESS, self.clock())
        if result is not None:
            self._transition(result[1])

    def record_failure(self, error: BaseException | str | None = None) -> None:
        message = str(error or "failure")[:300]
        result = self._script(_FAILURE, self.clock(), self.threshold, message)
        if result is not None:
            self._transition(result[1], message)

    # -- reading and forcing -------------------------------------------------------------------
    def state(self) -> BreakerState:
        try:
            raw = {_decode(k): _decode(v) for k, v in self.redis.hgetall(self.key).items()}
        except Exception:
            log.warning("circuit breaker %s: cannot read state", self.system, exc_info=True)
            raw = {}

        def number(key):
            value = raw.get(key)
            return float(value) if value not in (None, "") else None

        return BreakerState(
            system=self.system, state=raw.get("state") or "closed",
            failures=int(raw.get("failures") or 0), opened_at=number("opened_at"),
            forced=raw.get("forced") == "1", last_error=raw.get("last_error"),
            last_failure_at=number("last_failure_at"), last_success_at=number("last_success_at"),
            changed_at=number("changed_at"), threshold=self.threshold, cooldown=self.cooldown,
        )

    def force(self, state: str, user: Any = None, *, session=None, reason: str | None = None):
        """Ops: ``open`` (sticky until forced closed), ``closed`` (failures forgotten) or
        ``half_open`` (probe at the next call). Audited when a session is given or an app
        context exists; committed by the caller's session."""
        if state not in BREAKER_STATES:
            raise ValueError(f"breaker state must be one of {', '.join(BREAKER_STATES)}")
        before = self.state().as_dict()
        now = self.clock()
        pipe = self.redis.pipeline()
        if state == "open":
            pipe.hset(self.key, mapping={"state": "open", "forced": "1", "opened_at": now,
                                         "changed_at": now})
        elif state == "closed":
            pipe.hset(self.key, mapping={"state": "closed", "forced": "0", "failures": 0,
                                         "changed_at": now})
            pipe.hdel(self.key, "opened_at", "probe_until")
        else:  # half_open: let the next caller probe
            pipe.hset(self.key, mapping={"state": "half_open", "forced": "0", "probe_until": 0,
                                         "changed_at": now})
        pipe.execute()
        log.warning("circuit breaker %s forced %s", self.system, state,
                    extra={"integration": self.system, "breaker": state,
                           "user": getattr(user, "username", None) or str(user)})

        if session is not None or has_app_context():
            session = session or db.session
            audit.record(session, user, "breaker.forced", "breaker", self.system,
                         before=before, after={"state": state, "reason": reason})
        return self.state()

    def reset(self) -> None:
        self.redis.delete(self.key)

    # -- sugar ---------------------------------------------------------------------------------
    def __enter__(self):
        if not self.allow():
            raise BreakerOpen(self.system, self.state().retry_in)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.record_success()
        elif issubclass(exc_type, self.failure_exceptions):
            self.record_failure(exc)
        return False

    def __call__(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def guarded(*args, **kwargs):
            with self:
                return func(*args, **kwargs)

        return guarded


def breaker(system: str, **kwargs) -> Breaker:
    """The breaker of ``system`` (T24, W4, LOS, PAYMENTS, CTI, GPS; any name works)."""
    return Breaker(system, **kwargs)


def force(system: str, state: str, user: Any = None, *, session=None,
          reason: str | None = None) -> BreakerState:
    """Ops: force the breaker of ``system`` open, closed or half-open (audited)."""
    return breaker(system).force(state, user, session=session, reason=reason)


def breaker_states(systems=None, redis=None) -> dict[str, BreakerState]:
    """The state of every external system's breaker (for the ops page and /metrics)."""

    names = systems or [n for n in INTEGRATIONS if n != "EVENTS"]
    return {n: Breaker(n, redis=redis).state() for n in names}
