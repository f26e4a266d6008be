"""Supervision: the live agent-status board (KPIs and assignment are added here later)."""
