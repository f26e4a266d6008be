"""``flask flags list`` and ``flask flags set NAME --all|--off|--teams T1,T2``: the feature
flags from the command line, audited as the ops page's changes are (actor "cli")."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup
from sqlalchemy import select

from portal.extensions import db
from portal.flags import operations
from portal.flags.registry import FLAGS
from portal.models import Team

flags = AppGroup("flags", help="Feature flags: switch a capability on for everyone, for chosen "
                               "teams only, or off.")


def _team_names() -> dict[int, str]:
    return dict(db.session.execute(select(Team.id, Team.name)).all())


@flags.command("list")
def list_flags() -> None:
    """Every known flag with its state, its teams and its last change."""
    names = _team_names()
    changes = operations.last_changes(db.session)
    for name, current in operations.states(db.session).items():
        teams = ", ".join(sorted(names.get(t, str(t)) for t in current.team_ids))
        state = f"teams: {teams}" if current.mode == "teams" else current.mode
        last = changes.get(name)
        since = f"  (changed {last.at:%Y-%m-%d %H:%M} UTC by {last.actor_label})" if last \
            else "  (never changed: default on for everyone)"
        click.echo(f"{name:<12} {state}{since}")
        click.echo(f"{'':<12} {FLAGS[name].description}")


@flags.command("set")
@click.argument("name")
@click.option("--all", "everyone", is_flag=True, help="on for everyone")
@click.option("--off", is_flag=True, help="off for everyone")
@click.option("--teams", default=None, help="on for these teams only (names, comma-separated)")
def set_flag(name: str, everyone: bool, off: bool, teams: str | None) -> None:
    """Switch flag NAME: --all, --off or --teams T1,T2 (exactly one)."""
    if name not in FLAGS:
        click.echo(f"Error: unknown feature flag {name!r}; the known flags are "
                   f"{', '.join(sorted(FLAGS))}", err=True)
        sys.exit(2)
    if sum((everyone, off, teams is not None)) != 1:
        click.echo("Error: give exactly one of --all, --off or --teams T1,T2", err=True)
        sys.exit(2)
    team_ids: list[int] = []
    if teams is not None:
        by_name = {team_name: team_id for team_id, team_name in _team_names().items()}
        wanted = [t.strip() for t in teams.split(",") if t.strip()]
        unknown = [t for t in wanted if t not in by_name]
        if not wanted or unknown:
            click.echo(f"Error: no team named {', '.join(map(repr, unknown)) or '(none given)'}"
                       f"; the teams are {', '.join(sorted(by_name)) or '(none)'}", err=True)
            sys.exit(2)
        team_ids = [by_name[t] for t in wanted]
    mode = "all" if everyone else "off" if off else "teams"
    changed = operations.set_flag(db.session, name, mode, team_ids, "cli")
    db.session.commit()
    if changed is None:
        click.echo(f"{name}: already {mode}; nothing changed")
    else:
        before, after = changed
        click.echo(f"{name}: {before} -> {after}")


commands = [flags]
