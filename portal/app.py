"""The application factory's body: config, extensions, the blueprints (an explicit list), the
event subscribers (one static list, portal/events/subscribers.py) and the CLI.

It lives apart from the package root so that importing a helper (``portal.clock``) or a
feature's operations never builds the web application.
"""

from __future__ import annotations

import os

from flask import Flask
from werkzeug.routing import IntegerConverter

from portal import clock, db_ping, i18n, models, signing, tracing  # noqa: F401  (models: every table on the metadata)
from portal.admin import action_codes as admin_action_codes  # noqa: F401  (routes on admin's bp)
from portal.admin import contact_rules as admin_contact_rules  # noqa: F401  (routes on admin's bp)
from portal.admin import statuses as admin_statuses  # noqa: F401  (routes on admin's bp)
from portal.admin import views as admin
from portal.api import field as api_field  # noqa: F401  (routes on the API's bp)
from portal.api import openapi as api_openapi  # noqa: F401  (routes on the API's bp)
from portal.api import read as api_read  # noqa: F401  (routes on the API's bp)
from portal.api import views as api
from portal.api.graphql import graphql_bp
from portal.assignment import views as assignment
from portal.auth import views as auth
from portal.calls import views as calls
from portal.cases import cli as cases_cli  # noqa: F401  (commands on cases' bp)
from portal.cases import plan_views as cases_plans  # noqa: F401  (routes on cases' bp)
from portal.cases import reference_views as cases_references  # noqa: F401  (routes on cases' bp)
from portal.cases import status_views as cases_statuses  # noqa: F401  (routes on cases' bp)
from portal.cases import views as cases
from portal.cli import register_cli
from portal.config import Config, config_from_env
from portal.documents import views as documents
from portal.events.subscribers import load_subscribers
from portal.extensions import babel, csrf, db, htmx, limiter, login_manager, migrate
from portal.field import cli as field_cli  # noqa: F401  (commands on field's bp)
from portal.field import views as field
from portal.flags import web as flags_web
from portal.kpi import views as kpi
from portal.logging import init_logging
from portal.main import views as main
from portal.messages import cli as messages_cli  # noqa: F401  (commands on messages' bp)
from portal.messages import letters_views as letters
from portal.messages import views as messages
from portal.notifications import views as notifications
from portal.ops import (
    flag_views,  # noqa: F401  (the Feature flags page, on ops' bp)
    invariant_views,  # noqa: F401  (routes on ops' bp)
)
from portal.ops import metrics as ops_metrics  # noqa: F401  (routes on ops' bp)
from portal.ops import views as ops
from portal.pay import views as pay
from portal.payments import cli as payments_cli  # noqa: F401  (commands on payments' bp)
from portal.payments import effects as payments_effects
from portal.payments import views as payments
from portal.placements import views as placements
from portal.refresh import cli as refresh_cli  # noqa: F401  (commands on cases' bp)
from portal.refresh import views as refresh_views  # noqa: F401  (routes on cases' bp)
from portal.strategies import cli as strategies_cli  # noqa: F401  (commands on strategies' bp)
from portal.strategies import views as strategies
from portal.supervisor import views as supervisor
from portal.web import register_web
from portal.webhooks import cti as webhooks_cti  # noqa: F401  (routes on the webhooks' bp)
from portal.webhooks import payments as webhooks_payments  # noqa: F401  (routes on the webhooks' bp)
from portal.webhooks import sms as webhooks_sms  # noqa: F401  (routes on the webhooks' bp)
from portal.webhooks import views as webhooks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

class IdConverter(IntegerConverter):
    """``<int:…>`` in every route: no row has an id beyond PostgreSQL's bigint, so such a URL
    is not found (404) rather than a database error."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(url_map, *args, **kwargs)


BLUEPRINTS = (
    auth.bp, auth.aliases, main.bp, cases.bp, supervisor.bp, field.bp, ops.bp, webhooks.bp,
    admin.bp, api.bp,
    graphql_bp, notifications.bp, calls.bp, payments.bp, kpi.bp, assignment.bp,
    placements.bp, pay.bp, letters.bp,
    documents.bp,
    strategies.bp,
    messages.bp, messages.ops_bp,
)


def build_app(config: type[Config] | None = None, overrides: dict | None = None) -> Flask:
    app = Flask(
        "portal",
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
        # what the portal keeps on disk (documents, print batches) goes where make run keeps
        # its databases: INSTANCE_DIR, default instance/
        instance_path=os.path.abspath(os.environ.get("INSTANCE_DIR")
                                      or os.path.join(ROOT, "instance")),
    )
    app.config.from_object(config or config_from_env())
    app.config.update(overrides or {})
    signing.check_schemes(app.config)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        raise RuntimeError(
            "DATABASE_URL is not set. Use `make run` (starts an embedded PostgreSQL) "
            "or export DATABASE_URL=postgresql://user@host/dbname"
        )

    init_logging(app)
    tracing.init_tracing(app)  # once per process; a SERVER span around each request

    # PostgreSQL's crm_now() runs on the product's clock (portal/clock.py, migration 0013)
    engine_options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    engine_options["connect_args"] = {**clock.postgres_connect_args(),
                                      **engine_options.get("connect_args", {})}
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options

    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            db_ping.install(engine, app.config["DB_PING_AFTER_IDLE_SECONDS"])
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"), compare_type=True)
    login_manager.init_app(app)
    htmx.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale,
                   default_translation_directories=os.path.join(ROOT, "portal", "translations"))

    app.url_map.converters["int"] = IdConverter
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    register_web(app)
    flags_web.install(app)
    register_cli(app)
    with app.app_context():
        load_subscribers()
    payments_effects.register_resume_hook()
    return app
