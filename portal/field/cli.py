"""``flask field devices`` / ``register-device`` / ``unregister-device``: the OsmAnd device ids
(Traccar Client "device identifier") of field agents' phones, and ``flask field forward`` to
drain the GPS forwarding backlog by hand."""

from __future__ import annotations

import json

import click
from sqlalchemy import select

from integrations.gps import forward
from portal import audit
from portal.extensions import db
from portal.field.sim_phones import issue_sim_phones
from portal.field.views import bp
from portal.models import User
from portal.models.field import FieldDevice


@bp.cli.command("register-device")
@click.argument("device_id")
@click.argument("username")
@click.option("--label", help="what the device is, e.g. 'Samsung A14 of Tuan'")
def register_device(device_id: str, username: str, label: str | None) -> None:
    """Map DEVICE_ID to the field agent USERNAME (re-registering moves it; audited)."""

    agent = db.session.scalar(select(User).where(User.username == username))
    if agent is None or agent.role != "field_agent":
        raise click.ClickException(f"{username} is not a field agent")
    device_id = device_id.strip()
    if not device_id or len(device_id) > 64:
        raise click.ClickException("the device id must be 1 to 64 characters")
    device = db.session.get(FieldDevice, device_id)
    before = None if device is None else {"agent_id": device.agent_id, "label": device.label}
    if device is None:
        device = FieldDevice(device_id=device_id, agent_id=agent.id)
        db.session.add(device)
    device.agent_id, device.label = agent.id, label or (device.label if before else None)
    audit.record(db.session, "cli", "field_device.register", "field_device", device_id, before,
                 {"agent_id": agent.id, "label": device.label})
    db.session.commit()
    click.echo(f"device {device_id} → {agent.username} ({agent.full_name})")


@bp.cli.command("unregister-device")
@click.argument("device_id")
def unregister_device(device_id: str) -> None:
    device = db.session.get(FieldDevice, device_id)
    if device is None:
        raise click.ClickException(f"no device {device_id}")
    audit.record(db.session, "cli", "field_device.unregister", "field_device", device_id,
                 {"agent_id": device.agent_id, "label": device.label}, None)
    db.session.delete(device)
    db.session.commit()
    click.echo(f"device {device_id} unregistered")


@bp.cli.command("devices")
def list_devices() -> None:
    """Registered devices, their agent and when they last posted."""

    for d in db.session.scalars(select(FieldDevice).order_by(FieldDevice.device_id)):
        seen = d.last_seen_at.isoformat(timespec="seconds") if d.last_seen_at else "never"
        click.echo(f"{d.device_id:<24} {d.agent.username:<16} {d.label or '':<30} {seen}")


@bp.cli.command("forward")
def forward_now() -> None:
    """Forward stored positions to the GPS system now (what the scheduled job does)."""

    result = forward.forward_pending(db.session, trigger="manual")
    click.echo(", ".join(f"{k}: {v}" for k, v in result.items()))


@bp.cli.command("sim-phones")
@click.option("--agents", default=50, show_default=True, help="at most this many field agents")
@click.option("--stops", default=6, show_default=True, help="addresses on each route")
def sim_phones(agents: int, stops: int) -> None:
    """Phones for the phone simulator, as JSON on stdout (each holds a fresh device token)."""
    click.echo(json.dumps(issue_sim_phones(db.session, limit_agents=agents,
                                           stops_per_agent=stops)))
