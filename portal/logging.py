"""Structured logging and the correlation id (filled in by the event-bus work)."""

from __future__ import annotations

from flask import Flask


def init_logging(app: Flask) -> None:
    pass
