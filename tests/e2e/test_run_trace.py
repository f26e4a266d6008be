"""The run detail page shows the run's trace id beside its correlation id (issue 24 §5), at 1440
and 390 px, without sideways scroll and clean of axe violations. Screenshots in
test-results/screenshots/run-trace-*.png."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect

from portal import clock, tracing
from portal.models import IntegrationRun
from tests.e2e.test_vietnamese_walk import AXE, RUN_AXE, WIDER
from tests.factories import DEFAULT_PASSWORD

WIDTHS = {1440: {"width": 1440, "height": 900}, 390: {"width": 390, "height": 844}}


def test_the_run_detail_page_shows_the_trace_id(page, live_server, db, make_user, sign_in,
                                                screenshot):
    at = clock.now() - timedelta(minutes=3)
    with tracing.tracer().start_as_current_span("W4 sync") as span:
        run = IntegrationRun(integration="W4", kind="sync", trigger="schedule",
                             status="succeeded", started_at=at,
                             finished_at=at + timedelta(seconds=2), duration_ms=2000,
                             extracted=12, loaded=12,
                             correlation_id="4f1c2a9be0d34c51a8f07e6b2d9c1a33")
        db.session.add(run)
        db.session.commit()
    trace_id = f"{span.get_span_context().trace_id:032x}"
    make_user(role="ops", username="lan.ops", full_name="Nguyen Thi Lan")
    sign_in(page, "lan.ops", DEFAULT_PASSWORD)
    for width, viewport in WIDTHS.items():
        page.set_viewport_size(viewport)
        page.goto(f"{live_server.url}/ops/integrations/runs/{run.id}")
        expect(page.get_by_test_id("run-trace-id")).to_have_text(trace_id)
        expect(page.get_by_test_id("run-correlation-id")).to_have_text(run.correlation_id)
        screenshot(page, f"run-trace-{width}")
        assert page.evaluate(WIDER) <= 0, f"{width}px scrolls sideways"
        page.evaluate(AXE + "\n;0")
        assert page.evaluate(RUN_AXE) == []
