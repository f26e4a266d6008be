"""Team KPI dashboard (supervisor: own teams; admin: all) over portal.kpi.operations."""
