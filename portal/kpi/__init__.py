"""Team KPI dashboard (supervisor: own teams; admin: all) over portal.services.kpis."""

from flask import Blueprint

bp = Blueprint("kpi", __name__, url_prefix="/supervisor/kpi")

from portal.kpi import views  # noqa: E402,F401
