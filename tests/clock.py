"""``TEST_CLOCK``: the instant the suite's clock starts at, for example
``TEST_CLOCK=2028-12-31T23:30:00+07:00 make test``.

The instant becomes an offset from the system clock in ``CRM_CLOCK_OFFSET_SECONDS``
(portal.clock), set in this process's environment before any server, worker or sandbox twin is
started, so all of them inherit it and run on one clock from that instant. Unset, the clock is
the system's. The instants the suite must pass at are listed in HOSTILE_INSTANTS (make
test-clock runs them all; .ci/run picks one per run).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

from portal.clock import OFFSET_ENV, postgres_connect_args

ENV = "TEST_CLOCK"
APPLIED_ENV = "TEST_CLOCK_APPLIED"  # the TEST_CLOCK value the offset was computed for

HOSTILE_INSTANTS = (
    "2028-12-31T23:30:00+07:00",  # a Sunday night, the last of the year, after the window
    "2027-03-01T06:59:00+07:00",  # a Monday, a minute before the contact window opens
    "2027-12-06T21:00:00+07:00",  # the instant the contact window closes
    "2028-02-29T12:00:00+07:00",  # noon on a leap day
)


def parse(raw: str) -> datetime:
    try:
        instant = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(f"{ENV}={raw!r} is not an ISO 8601 instant "
                         "(for example 2028-12-31T23:30:00+07:00)") from None
    if instant.tzinfo is None:
        raise ValueError(f"{ENV}={raw!r} has no UTC offset: write it as in "
                         "2028-12-31T23:30:00+07:00")
    return instant


def apply() -> str:
    """Set the process clock offset from ``TEST_CLOCK``; returns a line for the report header."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        os.environ.pop(OFFSET_ENV, None)
        return f"clock: the system clock ({ENV} unset)"
    # Once per run: a pytest started by a test inherits the offset its parent fixed.
    if os.environ.get(APPLIED_ENV) != raw or OFFSET_ENV not in os.environ:
        offset = (parse(raw) - datetime.now(UTC)).total_seconds()  # the system clock
        os.environ[OFFSET_ENV] = repr(offset)
        os.environ[APPLIED_ENV] = raw
        # every libpq connection of the run (the tests' own psycopg ones too) gives crm_now()
        # the same clock as the product's connections do
        options = postgres_connect_args()["options"]
        os.environ["PGOPTIONS"] = f"{os.environ.get('PGOPTIONS', '')} {options}".strip()
    return f"clock: starts at {raw} ({ENV}; {OFFSET_ENV}={os.environ[OFFSET_ENV]})"


def main(argv: list[str]) -> int:
    """``python -m tests.clock instants``: the hostile instants, one per line;
    ``python -m tests.clock pick KEY``: one of them, chosen by KEY (CI passes the commit)."""
    import hashlib

    if argv[:1] == ["instants"]:
        print("\n".join(HOSTILE_INSTANTS))
        return 0
    if len(argv) == 2 and argv[0] == "pick":
        digest = int(hashlib.sha256(argv[1].encode()).hexdigest(), 16)
        print(HOSTILE_INSTANTS[digest % len(HOSTILE_INSTANTS)])
        return 0
    print("usage: python -m tests.clock instants | pick KEY", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
