"""Flask CLI commands (``flask --app wsgi <command>``): each area exposes ``commands``."""

from __future__ import annotations

from flask import Flask

from integrations import sync_cli  # flask sync t24|w4|los
from portal.auth import cli as auth_cli
from portal.events import cli as events_cli
from portal.flags import cli as flags_cli
from portal.ops import cli as ops_cli
from portal.seed import cli as seed_cli
from portal.vault import cli as vault_cli


def register_cli(app: Flask) -> None:
    for module in (auth_cli, seed_cli, events_cli, ops_cli, flags_cli):
        for command in module.commands:
            app.cli.add_command(command)
    for command in vault_cli.ops_commands:  # flask ops backup|restore|verify-backup|mask-copy
        ops_cli.ops.add_command(command)

    for command in sync_cli.commands:
        app.cli.add_command(command)
