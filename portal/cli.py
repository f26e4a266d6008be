"""Flask CLI commands (``flask --app wsgi <command>``)."""

from __future__ import annotations

from flask import Flask


def register_cli(app: Flask) -> None:
    pass
