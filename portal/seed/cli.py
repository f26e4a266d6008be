"""``flask seed-demo``: fill an empty database with the demo data set (idempotent)."""

from __future__ import annotations

import os
import time
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import with_appcontext
from werkzeug.security import generate_password_hash

from portal.cases.queue import recompute_case_totals, recompute_priorities
from portal.extensions import db
from portal.seed.demo import DEFAULT_DEMO_PASSWORD, DemoSeeder, already_seeded

LOCK_KEY = "portal.seed.demo"


@click.command("seed-demo")
@click.option("--customers", default=2000, show_default=True, type=click.IntRange(min=1),
              help="Number of customers.")
@click.option("--loans", "products", default=3000, show_default=True,
              type=click.IntRange(min=0), help="Number of loans (T24) and cards (W4) together.")
@with_appcontext
def seed_demo(customers: int, products: int) -> None:
    """Seed demo data: staff, action codes, customers, loans, cards and 30 days of work.

    Runs once: a database that was seeded already is left as it is. Demo users log in with
    the password from DEMO_PASSWORD (default Demo@2026).
    """
    password = os.environ.get("DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD
    tz = ZoneInfo(current_app.config.get("BANK_TIMEZONE", "Asia/Ho_Chi_Minh"))
    started = time.perf_counter()
    with db.engine.raw_connection() as raw:
        conn = raw.driver_connection
        try:
            # One seeder at a time; the lock ends with the transaction.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (LOCK_KEY,))
            reason = already_seeded(conn)
            if reason:
                conn.rollback()
                click.echo(f"already seeded ({reason}); nothing to do")
                return
            if conn.execute("SELECT 1 FROM customers LIMIT 1").fetchone():
                raise click.ClickException(
                    "the database already holds customers; the demo seed only fills an empty "
                    "database")
            # One hash for every demo user: scrypt is slow on purpose, and they share a password.
            seeder = DemoSeeder(conn, customers=customers, products=products,
                                password_hash=generate_password_hash(password), tz=tz,
                                echo=click.echo)
            counts = seeder.run()
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    # case totals and priorities by their one definition (portal.cases.queue), not the seed's

    totals = recompute_case_totals(db.session)
    changed = recompute_priorities(db.session)
    db.session.commit()
    click.echo(f"case totals recomputed for {totals} cases, priorities for {changed}")
    # the recompute rewrote every case row: vacuum so that the queue's counts read the indexes
    # (all-visible pages) as they do in a running system once autovacuum has passed
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE) cases")
    elapsed = time.perf_counter() - started
    rows = sum(counts.values())
    click.echo(f"seeded {rows} rows in {elapsed:.1f}s ({rows / elapsed:,.0f} rows/s)")
    for table in sorted(counts):
        click.echo(f"  {table:<22} {counts[table]:>10,}")
    click.echo("demo logins: admin, ops, auditor, sup1-sup3, agent01-agent18, field01-field07")


commands = [seed_demo]
