"""Flask extensions, created once and bound to an app in ``create_app`` (nothing connects here)."""

from __future__ import annotations

from flask import current_app, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from redis import Redis

from portal.models.base import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
htmx = Htmx()
csrf = CSRFProtect()
babel = Babel()


class RouteLimiter(Limiter):
    """Flask-Limiter for limits set on routes (``@limiter.limit``), which check themselves when
    the route runs. Its middleware — a check before every request, for default, application and
    blueprint limits — is skipped while there are none of those (there are none today), which
    spares every request (a webhook, a GPS batch) the limiter's lookups."""

    def _check_request_limit(self, callable_name: str | None = None,
                             in_middleware: bool = True) -> None:
        manager = self.limit_manager
        if in_middleware and not (manager.default_limits or manager.application_limits
                                  or manager._blueprint_limits):
            return
        super()._check_request_limit(callable_name=callable_name, in_middleware=in_middleware)


limiter = RouteLimiter(key_func=get_remote_address, default_limits=[])


def partial_request(target: str | None = None) -> bool:
    """Whether this request asks for part of a page (the one test of every view and of the
    layout): an HTMX request (htmx-flask's ``request.htmx``) that is neither a boosted
    navigation nor a history restore, which get the whole page; aimed, when ``target`` is
    given, at the element with that id."""
    headers = getattr(request, "htmx", None)  # None: an app the extension is not bound to
    if not headers or headers.boosted or headers.history_restore_request:
        return False
    return target is None or headers.target == target


def get_redis() -> Redis:
    """The app's Redis client, created lazily on first use and shared by the process."""
    client = current_app.extensions.get("portal_redis")
    if client is None:
        url = current_app.config.get("REDIS_URL")
        if not url:
            raise RuntimeError("REDIS_URL is not configured")
        client = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
        current_app.extensions["portal_redis"] = client
    return client
