"""The webhooks blueprint (/api/v1): signed inbound requests from external systems.

Webhooks are not browser forms: CSRF does not apply (exempted here); they authenticate by HMAC
signature instead (portal/signing.py). Each system's routes live in their own module (payments,
cti), registered on this blueprint and listed in portal/app.py.
"""

from flask import Blueprint

from portal.extensions import csrf

bp = Blueprint("webhooks", __name__, url_prefix="/api/v1")
csrf.exempt(bp)
