"""Print batches for ops (``/letters/batches``): the batches by business date with their
counts, the files to download (combined PDF, manifest), building today's batch and handing a
batch to the print vendor; ``flask letters batch`` / ``flask letters hand-over`` do the same
from a shell or the scheduler. Thin: portal.messages.letters does the work."""

from __future__ import annotations

from datetime import date

import click
from flask import Blueprint, abort, flash, redirect, render_template, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.messages import letters
from portal.models.print_batches import PrintBatch, PrintBatchLetter
from portal.permissions.decorators import permission_required

bp = Blueprint("letters", __name__, url_prefix="/letters")

MANIFESTS = {"manifest.json": "application/json", "manifest.csv": "text/csv"}


@bp.get("/batches")
@permission_required("ops.integrations")
def batches():
    today = clock.bank_today()
    return render_template("letters/batches.html", batches=letters.batches(db.session),
                           today=today, waiting=letters.queued_letters(db.session, today),
                           combined_name=letters.combined_name,
                           built_today=db.session.scalar(select(PrintBatch.id).where(
                               PrintBatch.business_date == today)))


@bp.post("/batches")
@permission_required("ops.actions")
def build():
    today = clock.bank_today()
    batch = letters.build_print_batch(db.session, today, actor=current_user)
    db.session.commit()
    flash(_("Print batch of %(date)s: %(count)s letters.", date=today.strftime("%d/%m/%Y"),
            count=batch.letters), "success")
    return redirect(url_for("letters.batches"))


@bp.post("/batches/<int:batch_id>/hand-over")
@permission_required("ops.actions")
def hand_over(batch_id: int):
    batch = db.get_or_404(PrintBatch, batch_id)
    if letters.hand_over(db.session, batch, actor=current_user):
        flash(_("Batch handed to the print vendor: its letters are delivered."), "success")
    db.session.commit()
    return redirect(url_for("letters.batches"))


@bp.get("/batches/<int:batch_id>/files/<name>")
@permission_required("ops.integrations")
def download(batch_id: int, name: str):
    batch = db.get_or_404(PrintBatch, batch_id)
    known = {letters.combined_name(batch): "application/pdf", **MANIFESTS}
    if name not in known:
        known_letter = db.session.scalar(select(PrintBatchLetter.filename).where(
            PrintBatchLetter.batch_id == batch.id, PrintBatchLetter.filename == name))
        if known_letter is None:
            abort(404)
        known[name] = "application/pdf"
    path = letters.batch_dir(batch) / name
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype=known[name], as_attachment=True, download_name=name,
                     conditional=False, etag=False, max_age=0)


# -- commands -----------------------------------------------------------------------------------


def _day(value: str | None) -> date:
    return date.fromisoformat(value) if value else clock.bank_today()


@bp.cli.command("batch")
@click.option("--date", "day", help="business date (YYYY-MM-DD); default: today, bank time")
def batch_command(day: str | None):
    """Build the print batch of a business date (again: prints the one built)."""
    batch = letters.build_print_batch(db.session, _day(day), actor="cli")
    db.session.commit()
    click.echo(f"batch {batch.id} {batch.business_date}: {batch.letters} letters, "
               f"{batch.pages} pages in {letters.batch_dir(batch)}")


@bp.cli.command("hand-over")
@click.option("--date", "day", help="business date (YYYY-MM-DD); default: today, bank time")
def hand_over_command(day: str | None):
    """Mark the print batch of a business date as handed to the print vendor."""
    batch = db.session.scalar(select(PrintBatch).where(PrintBatch.business_date == _day(day)))
    if batch is None:
        raise click.ClickException("no print batch for that date")
    changed = letters.hand_over(db.session, batch, actor="cli")
    db.session.commit()
    click.echo(f"batch {batch.id}: {'handed over' if changed else 'already handed over'}")
