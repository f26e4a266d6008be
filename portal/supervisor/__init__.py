"""Supervision: the live agent-status board (KPIs and assignment are added here later)."""

from flask import Blueprint

bp = Blueprint("supervisor", __name__, url_prefix="/supervisor")

from portal.supervisor import views  # noqa: E402,F401
