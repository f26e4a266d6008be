"""The JSON API (/api/v1): API tokens or a logged-in session, errors as JSON."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from portal.api import field, read, views  # noqa: E402,F401  (routes register on bp)
