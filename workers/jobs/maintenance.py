"""Small jobs used for health checks and the throughput benchmark."""

from __future__ import annotations


def noop(*args, **kwargs) -> None:
    """Does nothing (bare RQ cost: no app context, no database)."""
    return None
