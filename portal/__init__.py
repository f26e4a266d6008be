"""The Collection CRM portal: ``create_app`` builds the Flask application (portal/app.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from portal.config import Config

__all__ = ["create_app"]


def create_app(config: type[Config] | None = None, overrides: dict | None = None) -> Flask:
    """Application factory: ``config`` is a Config class (default: from PORTAL_ENV), and
    ``overrides`` a mapping applied on top of it.

    Nothing here connects to PostgreSQL or Redis: connections are opened on first use.
    """
    # the package root stays light: importing portal.clock must not build the web app
    from portal.app import (
        build_app,  # lazy: importing portal.* (workers, CLI) must not build the app
    )

    return build_app(config, overrides)
