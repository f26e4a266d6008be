"""Signed inbound webhooks from external systems (payment system, call centre).

Webhooks are not browser forms: CSRF does not apply (they are exempted here); they authenticate
by HMAC signature instead (portal/webhooks/signing.py). Each system's routes live in their own
module, imported at the bottom so they register on ``bp``.
"""

from flask import Blueprint

from portal.extensions import csrf

bp = Blueprint("webhooks", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

# Route modules register themselves on bp; a module not written yet is simply absent.
import importlib as _importlib  # noqa: E402

for _name in ("payments", "cti"):
    try:
        _importlib.import_module(f"portal.webhooks.{_name}")
    except ModuleNotFoundError as _exc:  # pragma: no cover - only while a module is missing
        if _exc.name != f"portal.webhooks.{_name}":
            raise
