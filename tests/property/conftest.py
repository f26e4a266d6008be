"""Hypothesis profiles of the property tests, and what they share.

``ci`` (the default): few examples, derandomized so a run is reproducible (the same examples
every time; a failure prints the blob to replay it), no deadline (real PostgreSQL and HTTP).
``full``: many random examples, for a long local run: ``HYPOTHESIS_PROFILE=full make test``.
``PROPERTY_EXAMPLES`` overrides the number of examples of either.
"""

from __future__ import annotations

import os

import psycopg
import pytest
from hypothesis import HealthCheck, settings

_SHARED = {
    "deadline": None,
    "print_blob": True,
    # fixtures (database, client) are per test, not per example: every property below checks
    # what one example changed, not the absolute state
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                              HealthCheck.data_too_large, HealthCheck.filter_too_much],
}
settings.register_profile("ci", max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "25")),
                          derandomize=True, database=None, **_SHARED)
settings.register_profile("full", max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "500")),
                          **_SHARED)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def examples(ci_share: float = 1.0) -> settings:
    """The loaded profile with a share of its examples (for the slower properties)."""
    current = settings()
    return settings(current, max_examples=max(5, int(current.max_examples * ci_share)))


@pytest.fixture
def pg(app, db):
    """A psycopg connection (autocommit) to the test database, for the loaders."""
    url = app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as connection:
        yield connection
