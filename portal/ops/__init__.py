"""Ops: the integration health page, run detail, actions, workers and queues, alerts, and the
Prometheus ``/metrics`` endpoint (routes carry their full path: ``/ops/...`` and ``/metrics``)."""
