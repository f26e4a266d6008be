"""What the masked-copy and backup tests share: new, empty databases beside the test database."""

from __future__ import annotations

import psycopg
import pytest

from portal.vault import pgtools


def sibling_url(base: str, name: str) -> str:
    """The URL of database ``name`` on the server of ``base``."""
    return pgtools.libpq_url(base).rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(name="database")
def database_fixture(app):
    """``database(suffix)`` → the URL of a new, empty database beside the test database
    (dropped afterwards)."""
    base = app.config["SQLALCHEMY_DATABASE_URI"]
    own = pgtools.params(base)["dbname"]
    made = []

    def make(suffix: str) -> str:
        name = f"{own}_{suffix}"
        with psycopg.connect(sibling_url(base, "postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return sibling_url(base, name)

    yield make
    with psycopg.connect(sibling_url(base, "postgres"), autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
