"""The agent workspace: work queue, "Next case", customer search and the case view."""

from flask import Blueprint

bp = Blueprint("cases", __name__, url_prefix="/cases")

from portal.cases import cli, views  # noqa: E402,F401
