"""CLI: ``flask users …`` and ``flask tokens …`` (user accounts and API tokens)."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from portal.auth import login_protection, operations
from portal.extensions import db
from portal.models import User
from portal.models.base import utcnow
from portal.models.enums import ROLES
from portal.permissions import tokens as api_tokens

CLI_ACTOR = "cli"


@click.group("users", help="Create users, set passwords, list users.")
def users() -> None:
    pass


@users.command("create")
@click.option("--username", required=True)
@click.option("--full-name", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--email", default=None)
@click.option("--team", "team_name", default=None, help="Name of an existing team.")
@click.password_option(help="Prompted for (twice) when not given.")
@with_appcontext
def create_user(username, full_name, role, email, team_name, password):
    """Create a user."""

    try:
        user = operations.create_user(db.session, username=username, full_name=full_name,
                                      role=role, password=password, email=email,
                                      team_name=team_name, actor=CLI_ACTOR)
    except operations.AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Created user {user.username} ({user.role}), id {user.id}.")


@users.command("set-password")
@click.argument("username")
@click.password_option(help="Prompted for (twice) when not given.")
@with_appcontext
def set_password(username, password):
    """Set a user's password (and lift a login lockout)."""

    user = operations.find_user(db.session, username)
    if user is None:
        raise click.ClickException(f"No user {username!r}.")
    try:
        operations.set_password(db.session, user, password, actor=CLI_ACTOR)
    except operations.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    try:
        login_protection.from_app(current_app).unlock(user.username)
    except Exception as exc:  # noqa: BLE001 - the password is set; the lock expires by itself
        click.echo(f"Warning: could not clear the login lockout: {exc}", err=True)
    click.echo(f"Password of {user.username} changed.")


@users.command("list")
@with_appcontext
def list_users():
    """List users with role, team and state."""

    rows = db.session.scalars(select(User).order_by(User.role, User.username)).all()
    click.echo(f"{'ID':>5}  {'USERNAME':<20} {'ROLE':<12} {'TEAM':<20} {'ACTIVE':<6} NAME")
    for u in rows:
        team = u.team.name if u.team else "-"
        click.echo(f"{u.id:>5}  {u.username:<20} {u.role:<12} {team:<20} "
                   f"{'yes' if u.active else 'no':<6} {u.full_name}")
    click.echo(f"{len(rows)} user(s).")


@click.group("tokens", help="Create, list and revoke API tokens.")
def tokens() -> None:
    pass


@tokens.command("create")
@click.option("--name", required=True, help="What or who uses the token (e.g. 'Phone of an').")
@click.option("--scopes", required=True, help="Comma-separated api.* scopes.")
@click.option("--user", "username", default=None,
              help="The user the token acts for (omit for a system integration token).")
@click.option("--expires-days", type=click.IntRange(min=1), default=None,
              help="Days until the token expires (default: never).")
@with_appcontext
def create_token(name, scopes, username, expires_days):
    """Create an API token and print it ONCE."""

    user = None
    if username:
        user = operations.find_user(db.session, username)
        if user is None:
            raise click.ClickException(f"No user {username!r}.")
    expires_at = utcnow() + timedelta(days=expires_days) if expires_days else None
    try:
        token, raw = api_tokens.create_token(
            db.session, name=name, scopes=scopes.split(","), user=user, created_by=CLI_ACTOR,
            expires_at=expires_at,
        )
    except api_tokens.TokenError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Created token {token.id} ({token.prefix}…) with scopes {', '.join(token.scopes)}.")
    click.echo("Copy it now, it will not be shown again:")
    click.echo(raw)


@tokens.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked and expired tokens.")
@with_appcontext
def list_tokens(show_all):
    """List API tokens (never the secret)."""

    rows = api_tokens.list_tokens(db.session, include_inactive=show_all)
    click.echo(f"{'ID':>5}  {'PREFIX':<13} {'STATE':<8} {'USER':<16} {'LAST USED':<17} "
               f"NAME / SCOPES")
    for t in rows:
        last = t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else "never"
        user = t.user.username if t.user else "(system)"
        click.echo(f"{t.id:>5}  {t.prefix:<13} {api_tokens.token_state(t):<8} {user:<16} "
                   f"{last:<17} {t.name} [{', '.join(t.scopes)}]")
    click.echo(f"{len(rows)} token(s).")


@tokens.command("revoke")
@click.argument("token")
@with_appcontext
def revoke_token(token):
    """Revoke a token by id or visible prefix."""

    row = api_tokens.find_token(db.session, token)
    if row is None:
        raise click.ClickException(f"No token {token!r} (give its id or its full prefix).")
    try:
        api_tokens.revoke_token(db.session, row, revoked_by=CLI_ACTOR)
    except api_tokens.TokenError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Revoked token {row.id} ({row.prefix}…).")


commands: list = [users, tokens]
