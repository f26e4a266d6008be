"""``flask ops mask-copy | backup | restore | verify-backup`` (portal/vault): each refuses with a
precise message and exit status 1, having written nothing, when its checks fail. The ``ops``
group is portal/ops/cli.py's; portal/cli.py adds these commands to it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.vault import backup as backups
from portal.vault import masking
from portal.vault.pgtools import CopyRefused, describe

DEV_MASKING_KEY = "dev-masking-key-not-secret"  # portal/config.py's default


def _source_url() -> str:
    return current_app.config["SQLALCHEMY_DATABASE_URI"]


@click.command("mask-copy")
@with_appcontext
@click.option("--target", required=True, metavar="DATABASE_URL",
              help="an empty database (not this one) to copy into")
@click.option("--instance-dir", type=click.Path(file_okay=False, path_type=Path),
              help="also write the placeholder document files under DIR/documents")
def mask_copy(target: str, instance_dir: Path | None) -> None:
    """Copy the database into TARGET with every personal value replaced by a deterministic
    pseudonym (keyed by MASKING_KEY) and the documents by a placeholder."""
    if current_app.config["MASKING_KEY"] == DEV_MASKING_KEY:
        click.echo("warning: MASKING_KEY is the public development default; anyone can "
                   "recompute these pseudonyms from the real values. Set MASKING_KEY.", err=True)
    started = time.perf_counter()
    try:
        counts = masking.mask_copy(_source_url(), target, current_app.config["MASKING_KEY"],
                                   instance_dir=instance_dir, echo=click.echo)
    except CopyRefused as exc:
        raise click.ClickException(f"mask-copy refused: {exc}") from exc
    click.echo(f"masked copy of {sum(counts.values()):,} rows in {len(counts)} tables into "
               f"{describe(target)} in {time.perf_counter() - started:.1f} s")


@click.command("backup")
@with_appcontext
@click.option("--to", "to", type=click.Path(file_okay=False, path_type=Path),
              help="the directory the backup goes under (default BACKUP_DIR, else "
                   "<instance>/backups)")
@click.option("--prune/--no-prune", default=False, show_default=True,
              help="then drop old backups there (BACKUP_KEEP_DAYS, BACKUP_KEEP_COUNT)")
def backup(to: Path | None, prune: bool) -> None:
    """Back up the database (pg_dump, custom format) and the instance files, with a manifest
    of checksums."""
    app = current_app
    root = to or Path(app.config.get("BACKUP_DIR") or Path(app.instance_path) / "backups")
    started = time.perf_counter()
    try:
        path = backups.take(_source_url(), backups.Areas.of_app(app), root)
    except CopyRefused as exc:
        raise click.ClickException(f"backup failed: {exc}") from exc
    manifest = json.loads((path / backups.MANIFEST).read_text(encoding="utf-8"))
    size = sum(f["size"] for f in manifest["files"])
    click.echo(f"backup {path}: {len(manifest['files'])} files, {size:,} bytes, revision "
               f"{manifest['alembic_revision']}, {time.perf_counter() - started:.1f} s")
    if prune:
        for removed in backups.prune(root, int(app.config["BACKUP_KEEP_DAYS"]),
                                     int(app.config["BACKUP_KEEP_COUNT"]), keep=path):
            click.echo(f"removed {removed}")


@click.command("restore")
@with_appcontext
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--target", required=True, metavar="DATABASE_URL",
              help="an empty database to restore into")
@click.option("--instance-dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="a new or empty instance directory for the files (documents/, print/)")
def restore(path: Path, target: str, instance_dir: Path) -> None:
    """Restore the backup at PATH into an empty database and instance directory, after
    checking every file against its manifest."""
    started = time.perf_counter()
    try:
        manifest = backups.restore(path, target, backups.Areas.under(instance_dir))
    except CopyRefused as exc:
        raise click.ClickException(f"restore refused: {exc}") from exc
    click.echo(f"restored {path} (taken {manifest['created_at']}, revision "
               f"{manifest['alembic_revision']}) into {describe(target)} and {instance_dir} "
               f"in {time.perf_counter() - started:.1f} s")


@click.command("verify-backup")
@with_appcontext
@click.argument("path", type=click.Path(path_type=Path))
def verify_backup(path: Path) -> None:
    """Check a backup against its manifest without restoring it."""
    try:
        manifest = backups.verify(path)
    except CopyRefused as exc:
        raise click.ClickException(f"backup refused: {exc}") from exc
    click.echo(f"{path}: {len(manifest['files'])} files match the manifest; revision "
               f"{manifest['alembic_revision']}")


ops_commands: list = [mask_copy, backup, restore, verify_backup]
