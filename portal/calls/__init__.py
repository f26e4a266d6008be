"""The agent's side of the call centre: status control in the nav, click-to-call, the outcome
of a call, manual call logging when the call centre is down, and call history per agent and day.

Listed in ``portal.web.BLUEPRINT_PACKAGES``.
"""

from flask import Blueprint

bp = Blueprint("calls", __name__, url_prefix="/calls")

from portal.calls import views  # noqa: E402,F401
