"""Field work pages: the supervisor's live map (agents, customers, visits, routes), the review of
visits that could not be verified, visit planning, and the field agent's day."""

from flask import Blueprint

bp = Blueprint("field", __name__, url_prefix="/field")

from portal.field import cli, views  # noqa: E402,F401
