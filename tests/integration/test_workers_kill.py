"""A worker SIGKILLed in the middle of a handler loses nothing and duplicates nothing."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest
from sqlalchemy import select

from portal.events import publish
from portal.models.events import EventDelivery
from tests.integration.test_events_support import (  # noqa: F401  (bus is a fixture)
    SLOW,
    bus,
    calls,
    effects,
    start_worker,
    stop_process,
    visit_checked_in,
    wait_for,
)


@pytest.mark.usefixtures("bus")
@pytest.mark.parametrize("worker_class", ["default", "fork"])
def test_killed_worker_mid_handler_event_handled_exactly_once(app, db, redis_client,
                                                              worker_class):
    """default: the handler runs in the worker process; fork: in its work horse (both die)."""
    event = publish("VISIT_CHECKED_IN", visit_checked_in(42))
    db.session.commit()

    first = start_worker(app, "--queues", "events", "--worker-class", worker_class,
                         EVENTS_STALE_AFTER="1")
    second = None
    try:
        horse_pid = int(wait_for(lambda: redis_client.get("bus-test:slow-pid"), timeout=60,
                                 what="the handler to start"))
        # the handler is inside its transaction (effect flushed, row locked): kill everything
        os.killpg(first.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(horse_pid, signal.SIGKILL)  # the work horse has its own process group
        stop_process(first)
        row = db.session.execute(select(EventDelivery)).scalar_one()
        assert (row.status, row.attempts) == ("pending", 0)
        db.session.rollback()
        assert calls(redis_client, SLOW) == 1

        # a new worker starts: its start-up recovery and RQ's own clean-up of the dead worker's
        # job (RQ 3 schedules the job's retry) hand the delivery over again
        second = start_worker(app, "--queues", "events", "--with-scheduler", "--worker-class",
                              worker_class, EVENTS_STALE_AFTER="1")

        def delivered():
            row = db.session.execute(
                select(EventDelivery).where(EventDelivery.event_id == event.id)).scalar_one()
            db.session.rollback()
            return row.status == "delivered"

        wait_for(delivered, timeout=90, what="the delivery to be handed over and completed")
    finally:
        stop_process(first)
        if second is not None:
            stop_process(second)

    row = db.session.execute(
        select(EventDelivery).where(EventDelivery.event_id == event.id)).scalar_one()
    assert (row.status, row.attempts) == ("delivered", 1)
    assert calls(redis_client, SLOW) == 2  # killed once, then run to the end once
    assert effects(db, SLOW) == 1  # the killed attempt's effect was rolled back
