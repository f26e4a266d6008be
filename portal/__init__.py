"""The Collection CRM portal: ``create_app`` builds the Flask application."""

from __future__ import annotations

from flask import Flask

from portal.config import Config, config_from_env

__all__ = ["create_app"]


def create_app(config: type[Config] | None = None, overrides: dict | None = None) -> Flask:
    """Application factory: ``config`` is a Config class (default: from PORTAL_ENV), and
    ``overrides`` a mapping applied on top of it.

    Nothing here connects to PostgreSQL or Redis: connections are opened on first use.
    """
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    app = Flask(
        __name__,
        template_folder=os.path.join(root, "templates"),
        static_folder=os.path.join(root, "static"),
        instance_path=os.path.join(root, "instance"),
    )
    app.config.from_object(config or config_from_env())
    app.config.update(overrides or {})
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        raise RuntimeError(
            "DATABASE_URL is not set. Use `make run` (starts an embedded PostgreSQL) "
            "or export DATABASE_URL=postgresql://user@host/dbname"
        )

    from portal.logging import init_logging

    init_logging(app)

    from portal import clock

    # PostgreSQL's crm_now() runs on the product's clock (portal/clock.py, migration 0013)
    engine_options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    engine_options["connect_args"] = {**clock.postgres_connect_args(),
                                      **engine_options.get("connect_args", {})}
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options

    from portal import models  # noqa: F401  (register every table with the metadata)
    from portal.extensions import csrf, db, htmx, limiter, login_manager, migrate

    db.init_app(app)
    from portal import db_ping

    with app.app_context():
        for engine in db.engines.values():
            db_ping.install(engine, app.config["DB_PING_AFTER_IDLE_SECONDS"])
    migrate.init_app(app, db, directory=os.path.join(root, "migrations"), compare_type=True)
    login_manager.init_app(app)
    htmx.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)

    from portal.web import register_web

    register_web(app)

    from portal.cli import register_cli

    register_cli(app)
    return app
