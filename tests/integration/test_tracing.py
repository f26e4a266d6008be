"""Distributed tracing (issue 24 §5): one W3C trace from the web request through the outbox event,
the RQ delivery jobs and each subscriber, and into the outbound HTTP calls to external systems —
asserted on finished spans kept by an in-memory exporter, on what a sandbox twin received, and on
the OTLP/HTTP export a real worker process sends to a local receiver."""
# ruff: noqa: F811 - the field fixtures are imported from tests.field_support

from __future__ import annotations

import json
import logging
import secrets
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select

from portal import tracing
from portal.logging import JsonFormatter
from portal.models import Event, IntegrationRun
from tests.field_support import (  # noqa: F401 - fixtures
    field_team,
    gps_sandbox,
    make_device_token,
    make_field_agent,
)
from tests.integration.test_events_support import (  # noqa: F401 - the bus fixture
    ROOT,
    bus,
    drain,
    flask_command,
    worker_env,
)
from tests.integration.test_field_forward import post_points
from tests.integration.test_standard_webhooks import (  # noqa: F401 - fixtures
    PAY_SECRET,
    PAY_URL,
    loan,
    payment_body,
    payments_standard,
    standard,
)

# -- the in-memory exporter ----------------------------------------------------------------------


class _Recording(SpanProcessor):
    """Hands finished spans to an in-memory exporter while a test records (installed once per
    process: a provider's processors cannot be removed)."""

    def __init__(self):
        self.exporter = InMemorySpanExporter()
        self.active = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.active:
            self.exporter.export((span,))


_recording: _Recording | None = None


@pytest.fixture
def spans(app):
    """The spans finished during the test (``spans.get_finished_spans()``)."""
    global _recording
    if _recording is None:
        _recording = _Recording()
        tracing.add_span_processor(_recording)
    _recording.exporter.clear()
    _recording.active = True
    try:
        yield _recording.exporter
    finally:
        _recording.active = False
        _recording.exporter.clear()


def hex_trace(span) -> str:
    return f"{span.context.trace_id:032x}"


def parent_id(span) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def new_traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


# -- the payment webhook's trace -----------------------------------------------------------------


def test_a_payment_webhook_trace_holds_the_request_the_jobs_and_every_subscriber(
        app, client, db, loan, payments_standard, spans):
    traceparent, trace_id, caller_span = new_traceparent()
    body = payment_body(loan)
    headers = {**standard(PAY_SECRET, body, "msg_trace_1"), "traceparent": traceparent}
    response = client.post(PAY_URL, data=body, headers=headers)
    assert response.status_code == 201, response.get_json()

    # the outbox row carries the request's span as the parent of what follows
    event = db.session.scalar(select(Event).where(Event.type == "PAYMENT_RECEIVED"))
    db.session.rollback()
    assert event.traceparent and tracing.trace_id_of(event.traceparent) == trace_id

    drain(app)
    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind == SpanKind.SERVER]
    assert [s.name for s in server] == [f"POST {PAY_URL}"]
    server = server[0]
    # the incoming traceparent is honoured: same trace, the caller's span is the parent
    assert hex_trace(server) == trace_id
    assert f"{parent_id(server):016x}" == caller_span and server.parent.is_remote
    assert server.attributes["http.response.status_code"] == 201
    assert event.traceparent.split("-")[2] == f"{server.context.span_id:016x}"

    from portal.events.subscribers import subscribers_for

    expected = {sub.name for sub in subscribers_for("PAYMENT_RECEIVED")}
    assert expected, "PAYMENT_RECEIVED has subscribers"
    jobs = [s for s in finished if s.kind == SpanKind.CONSUMER and s.name == "job deliver_event"
            and hex_trace(s) == trace_id]
    subs = [s for s in finished if s.name.startswith("subscriber ")]
    assert {s.attributes["crm.subscriber"] for s in subs} == expected
    assert len(jobs) == len(expected) == len(subs)
    # every job is a child of the request's span; every subscriber span of its job's span
    for job in jobs:
        assert parent_id(job) == server.context.span_id
        assert job.attributes["messaging.system"] == "rq"
    job_ids = {j.context.span_id for j in jobs}
    for sub in subs:
        assert hex_trace(sub) == trace_id
        assert parent_id(sub) in job_ids
        assert sub.attributes["crm.event.id"] == str(event.id)
    assert len({parent_id(s) for s in subs}) == len(subs)  # one subscriber call per job


def test_a_request_without_traceparent_starts_a_new_trace(client, spans):
    response = client.get("/healthz")
    finished = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert len(finished) == 1
    span = finished[0]
    assert span.parent is None and span.context.trace_id != 0
    assert span.attributes["http.response.status_code"] == response.status_code
    # a malformed header is ignored, not trusted
    client.get("/healthz", headers={"traceparent": "00-zz-not-a-trace-01"})
    second = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER][-1]
    assert second.parent is None and second.context.trace_id != span.context.trace_id


def test_each_subscriber_span_is_under_its_own_events_trace(app, db, bus, spans):
    """A relay batch holds events from many traces; deliveries run outside them (no job span
    here): each subscriber span takes its event's stored traceparent as its parent."""
    from portal.events import publish
    from portal.events.relay import relay_pending
    from portal.events.subscribers import deliver, subscribers_for
    from portal.models import EventDelivery

    published = []
    for n in range(2):
        with tracing.tracer().start_as_current_span(f"publisher {n}") as span:
            event = publish("CUSTOMER_UPDATED", {"cif": f"TR{n:06d}", "source_system": "T24",
                                                 "changes": {"phone": {"old": "1", "new": "2"}}})
            published.append((event.id, span.get_span_context()))
    db.session.commit()
    relay_pending(db.session)
    with tracing.tracer().start_as_current_span("unrelated delivery loop") as loop:
        for event_id, _ in published:
            for sub in subscribers_for("CUSTOMER_UPDATED"):
                deliver(db.session, event_id, sub.name)
    subs = [s for s in spans.get_finished_spans() if s.name.startswith("subscriber ")]
    assert subs
    for event_id, publisher in published:
        mine = [s for s in subs if s.attributes["crm.event.id"] == str(event_id)]
        assert mine
        for s in mine:
            assert s.context.trace_id == publisher.trace_id
            assert parent_id(s) == publisher.span_id
            assert [link.context.span_id for link in s.links] == [loop.get_span_context().span_id]
    db.session.rollback()
    assert db.session.scalar(select(EventDelivery.id).limit(1)) is not None


# -- outbound calls -----------------------------------------------------------------------------


def test_an_outbound_call_to_a_twin_carries_the_traceparent_and_the_run_keeps_the_trace(
        app, client, db, gps_sandbox, make_field_agent, make_device_token, spans):
    received: list[str | None] = []
    inner = gps_sandbox.app.wsgi_app

    def recording(environ, start_response):
        if environ["PATH_INFO"].startswith("/api/"):
            received.append(environ.get("HTTP_TRACEPARENT"))
        return inner(environ, start_response)

    gps_sandbox.app.wsgi_app = recording
    traceparent, trace_id, _ = new_traceparent()
    token = make_device_token(make_field_agent())
    client.environ_base["HTTP_TRACEPARENT"] = traceparent
    try:
        post_points(client, token, 600, 5)  # accepted points enqueue a forward job
    finally:
        client.environ_base.pop("HTTP_TRACEPARENT", None)
    drain(app, queues=("integrations",))

    assert received, "the GPS twin was called"
    assert all(tracing.trace_id_of(tp) == trace_id for tp in received), received
    finished = spans.get_finished_spans()
    clients = [s for s in finished if s.kind == SpanKind.CLIENT and hex_trace(s) == trace_id]
    assert clients and {s.attributes["crm.external_system"] for s in clients} == {"GPS"}
    sent_parents = {tp.split("-")[2] for tp in received}
    assert sent_parents == {f"{s.context.span_id:016x}" for s in clients}
    job = next(s for s in finished if s.kind == SpanKind.CONSUMER and hex_trace(s) == trace_id)
    assert all(parent_id(s) == job.context.span_id for s in clients)
    run = db.session.scalar(select(IntegrationRun).where(IntegrationRun.integration == "GPS")
                            .order_by(IntegrationRun.id.desc()))
    db.session.rollback()
    assert run is not None and run.trace_id == trace_id


def test_log_lines_carry_the_trace_and_span_ids(app):
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "inside", (), None)
    assert "trace_id" not in json.loads(JsonFormatter().format(record))
    with tracing.tracer().start_as_current_span("logging") as span:
        line = json.loads(JsonFormatter().format(record))
    ctx = span.get_span_context()
    assert line["trace_id"] == f"{ctx.trace_id:032x}"
    assert line["span_id"] == f"{ctx.span_id:016x}"


# -- OTLP export --------------------------------------------------------------------------------


class Receiver:
    """A tiny OTLP/HTTP collector: keeps every POST (path, content type, body)."""

    def __init__(self):
        posts = self.posts = []
        arrived = self.arrived = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                posts.append((self.path, self.headers.get("Content-Type"), body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()
                arrived.set()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def spans(self) -> list[tuple[str, object]]:
        """(service.name, span) of every span received on /v1/traces."""
        out = []
        for path, _type, body in self.posts:
            if path != "/v1/traces":
                continue
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    out.extend((attrs.get("service.name"), span) for span in scope.spans)
        return out


def test_spans_are_exported_by_otlp_http_when_an_endpoint_is_configured():
    assert tracing.otlp_traces_endpoint({}) is None
    with Receiver() as receiver:
        provider = tracing.build_provider({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url + "/"},
                                          kind="cli")
        with provider.get_tracer("t").start_as_current_span("exported span"):
            pass
        assert provider.force_flush(10_000)
        provider.shutdown()
        assert receiver.posts, "the exporter posted"
        path, content_type, _ = receiver.posts[0]
        assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
        assert [(service, span.name) for service, span in receiver.spans()] == [
            ("crm-cli", "exported span")]


def test_a_worker_process_exports_its_job_span_in_the_enqueuers_trace(app, db):
    """A real ``flask workers run`` with OTEL_EXPORTER_OTLP_ENDPOINT set: the job's span reaches
    the collector, named by the worker's service, in the trace of the job's traceparent."""
    from portal.queues import enqueue
    from portal.schedules import Jobs

    traceparent, trace_id, parent_span = new_traceparent()
    enqueue("default", Jobs.PRUNE_WEBHOOK_RECEIPTS, meta={"traceparent": traceparent})
    with Receiver() as receiver:
        env = worker_env(app, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
                         OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="")
        env.pop("PORTAL_PROCESS_KIND", None)
        result = subprocess.run(
            flask_command("workers", "run", "--burst", "--no-recover", "--queues", "default",
                          "--worker-class", "simple"),
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        received = receiver.spans()
    jobs = [(service, span) for service, span in received if span.name.startswith("job ")]
    assert jobs, (received, result.stderr[-2000:])
    service, span = jobs[0]
    assert service == "crm-worker"
    assert span.trace_id.hex() == trace_id and span.parent_span_id.hex() == parent_span


def test_the_process_kind_names_the_service():
    assert tracing.process_kind(["/usr/bin/gunicorn", "-c", "x", "wsgi:app"]) == "web"
    assert tracing.process_kind(["/v/bin/flask", "--app", "wsgi", "workers", "run"]) == "worker"
    assert tracing.process_kind(["/v/lib/flask/__main__.py", "--app", "wsgi", "workers", "run",
                                 "--burst"]) == "worker"
    assert tracing.process_kind(["/v/bin/flask", "--app", "wsgi", "run"]) == "web"
    assert tracing.process_kind(["/v/bin/flask", "--app", "wsgi", "ops", "backup"]) == "cli"
    assert tracing.process_kind(["/v/bin/flask", "--app", "run", "sync", "run"]) == "cli"
    assert tracing.otlp_traces_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) == \
        "http://c:4318/v1/traces"
    assert tracing.otlp_traces_endpoint({
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:9/traces"}) == "http://t:9/traces"


# -- the run detail page ------------------------------------------------------------------------


def test_the_run_detail_page_shows_the_trace_id_beside_the_correlation_id(client, db, login_as):
    from datetime import timedelta

    from portal import clock

    at = clock.now() - timedelta(minutes=2)
    with tracing.tracer().start_as_current_span("a sync") as span:
        run = IntegrationRun(integration="W4", kind="sync", trigger="manual", status="succeeded",
                             started_at=at, finished_at=at + timedelta(seconds=1),
                             correlation_id="cid-trace-page-1")
        db.session.add(run)
        db.session.commit()  # the trace id is taken when the row is written, inside the span
    outside = IntegrationRun(integration="W4", kind="sync", trigger="manual", status="succeeded",
                             started_at=at, correlation_id="cid-trace-page-2")
    db.session.add(outside)
    db.session.commit()
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert run.trace_id == trace_id and outside.trace_id is None

    login_as("ops")
    html = client.get(f"/ops/integrations/runs/{run.id}").get_data(as_text=True)
    assert 'data-testid="run-correlation-id" translate="no">cid-trace-page-1<' in html
    assert f'data-testid="run-trace-id" translate="no">{trace_id}<' in html
    assert "Trace id" in html
    html = client.get(f"/ops/integrations/runs/{outside.id}").get_data(as_text=True)
    assert 'data-testid="run-trace-id"' not in html


def test_a_flask_command_is_one_trace_exported_by_the_cli_process(app):
    with Receiver() as receiver:
        env = worker_env(app, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url)
        env.pop("PORTAL_PROCESS_KIND", None)
        result = subprocess.run(flask_command("workers", "schedules"), cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        received = receiver.spans()
    assert [(service, span.name) for service, span in received] == [
        ("crm-cli", "cli workers schedules")]
