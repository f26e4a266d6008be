"""Ops: the integration health page, run detail, actions, workers and queues, alerts, and the
Prometheus ``/metrics`` endpoint (routes carry their full path: ``/ops/...`` and ``/metrics``)."""

from flask import Blueprint

bp = Blueprint("ops", __name__)

from portal.ops import metrics, views  # noqa: E402,F401
