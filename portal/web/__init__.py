"""Registers blueprints, request hooks, template helpers and error handlers on the app."""

from __future__ import annotations

from flask import Flask


def register_web(app: Flask) -> None:
    from portal.auth import bp as auth_bp
    from portal.main import bp as main_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(main_bp)
