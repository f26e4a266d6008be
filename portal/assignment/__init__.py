"""Case assignment for supervisors: single, bulk by filter, CSV upload with a validation
preview, automatic distribution (over portal.services.assignment)."""

from flask import Blueprint

bp = Blueprint("assignment", __name__, url_prefix="/supervisor/assignment")

from portal.assignment import views  # noqa: E402,F401
