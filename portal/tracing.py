"""Distributed tracing (OpenTelemetry): one TracerProvider per process, W3C ``traceparent``
carried from the web request into the outbox event, the RQ job, each subscriber and the outbound
HTTP calls to external systems.

    web request (SERVER span, ``traceparent`` header honoured)
      └─ events.traceparent (stored with the outbox row, in the publisher's transaction)
           └─ RQ job (CONSUMER span; ``job.meta["traceparent"]`` beside the correlation id)
                └─ subscriber (one INTERNAL span per subscriber call, under ITS event's trace)
                └─ outbound HTTP (CLIENT span per attempt; ``traceparent`` header sent)

``init_tracing`` runs in the app factory; the provider is made once per process (the first
app wins; a forked RQ work horse inherits it). Its resource's ``service.name`` is
``<OTEL_SERVICE_NAME>-<kind>`` — kind ``web``, ``worker`` or ``cli`` (``process_kind``).
Spans are exported by OTLP/HTTP (protobuf, a BatchSpanProcessor) only when
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is configured;
otherwise spans are still made (trace ids exist, logs and integration runs carry them) and
dropped when they end. Tests add an in-memory exporter with ``add_span_processor``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACER_NAME = "collection-crm"
PROCESS_KINDS = ("web", "worker", "cli")

propagator = TraceContextTextMapPropagator()

_provider: TracerProvider | None = None
_provider_pid: int | None = None
_exporting = False


# -- the provider -------------------------------------------------------------------------------


def process_kind(argv: list[str] | None = None) -> str:
    """``web``, ``worker`` or ``cli``: PORTAL_PROCESS_KIND when set, else from the command line
    (``gunicorn`` → web; ``flask workers run`` → worker; ``flask run`` → web; any other
    ``flask`` command → cli; anything else, a WSGI server or a test → web)."""
    given = os.environ.get("PORTAL_PROCESS_KIND", "").strip().lower()
    if given in PROCESS_KINDS:
        return given
    argv = list(sys.argv if argv is None else argv)
    program = os.path.basename(argv[0]) if argv else ""
    if "gunicorn" in program:
        return "web"
    if program == "rq":
        return "worker"
    if "flask" in program or (program == "__main__.py" and "flask" in argv[0]):
        words = _command_words(argv)
        if words[:2] == ["workers", "run"]:
            return "worker"
        if words[:1] == ["run"]:
            return "web"
        return "cli"
    return "web"


def _command_words(argv: list[str]) -> list[str]:
    """The words of a ``flask`` command line without its options (and --app's value)."""
    words, rest = [], iter(argv[1:])
    for arg in rest:
        if arg in ("--app", "-A", "--env-file", "-e"):
            next(rest, None)  # the option's value
        elif not arg.startswith("-"):
            words.append(arg)
    return words


def otlp_traces_endpoint(config) -> str | None:
    """The OTLP/HTTP traces URL from the configuration: the traces endpoint as given, else
    ``<OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces`` (the OpenTelemetry rule), else None."""
    url = (config.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or "").strip()
    if url:
        return url
    base = (config.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
    return f"{base.rstrip('/')}/v1/traces" if base else None


def build_provider(config, kind: str | None = None) -> TracerProvider:
    """A new TracerProvider for ``config`` (a mapping: the app's config): its resource names the
    service and process kind; an OTLP/HTTP batch exporter when an endpoint is configured."""
    kind = kind or process_kind()
    prefix = config.get("OTEL_SERVICE_NAME") or "crm"
    resource = Resource.create({
        "service.name": f"{prefix}-{kind}",
        "service.namespace": prefix,
        "crm.process.kind": kind,
        "deployment.environment.name": config.get("OTEL_ENVIRONMENT") or "",
    })
    provider = TracerProvider(resource=resource)
    endpoint = otlp_traces_endpoint(config)
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(
            endpoint=endpoint, timeout=float(config.get("OTEL_EXPORTER_OTLP_TIMEOUT") or 10))
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def init_tracing(app) -> TracerProvider:
    """Set the process's TracerProvider once (the app factory calls this; later apps of the
    same process share the first one's) and trace the app's requests."""
    global _provider, _provider_pid, _exporting
    if _provider is None:
        _provider = build_provider(app.config)
        _provider_pid = os.getpid()
        _exporting = otlp_traces_endpoint(app.config) is not None
        trace.set_tracer_provider(_provider)
        if process_kind() == "cli":
            _start_command_span()
    install_request_tracing(app)
    return _provider


def _start_command_span(argv: list[str] | None = None) -> None:
    """A ``flask`` command (a sync run by hand, a backup) is one trace: a root span made current
    while the command runs, ended at exit (before the provider's own exit handler exports)."""
    import atexit

    words = _command_words(list(sys.argv if argv is None else argv))
    span = tracer().start_span(f"cli {' '.join(words[:2])}".strip(), kind=SpanKind.INTERNAL,
                               attributes={"process.command_args": " ".join(words)[:200]})
    otel_context.attach(trace.set_span_in_context(span))
    atexit.register(span.end)


def provider() -> TracerProvider | None:
    return _provider


def add_span_processor(processor: SpanProcessor) -> None:
    """Add a processor (tests: an in-memory exporter) to the process's provider."""
    if _provider is None:
        raise RuntimeError("tracing is not initialised: build an app first")
    _provider.add_span_processor(processor)


def flush_if_forked(timeout_millis: int = 5000) -> None:
    """In a forked child (an RQ work horse, which leaves by ``os._exit``): export what the
    batch processor holds now, or it is lost with the process. Nothing to do otherwise."""
    if _provider is not None and _exporting and os.getpid() != _provider_pid:
        _provider.force_flush(timeout_millis)


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


# -- the current trace --------------------------------------------------------------------------


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span (55 characters), or None outside a span."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def current_trace_id() -> str | None:
    """The current trace id (32 hex digits), or None outside a span."""
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None


def current_ids() -> tuple[str | None, str | None]:
    """(trace id, span id) of the current span as hex, or (None, None)."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def context_from(traceparent: str | None):
    """An OpenTelemetry context whose parent is ``traceparent`` (None when absent or invalid:
    the caller then starts from the current context)."""
    if not traceparent:
        return None
    ctx = propagator.extract({TRACEPARENT: traceparent})
    if not trace.get_current_span(ctx).get_span_context().is_valid:
        return None
    return ctx


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id part of a valid ``traceparent``."""
    ctx = context_from(traceparent)
    if ctx is None:
        return None
    return f"{trace.get_current_span(ctx).get_span_context().trace_id:032x}"


def inject_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """``headers`` plus the current ``traceparent`` (and ``tracestate``) for an outbound call."""
    carrier = dict(headers or {})
    propagator.inject(carrier)
    return carrier


# -- web requests -------------------------------------------------------------------------------


def install_request_tracing(app) -> None:
    """A SERVER span around every request of ``app``: the parent comes from the request's
    ``traceparent`` header when it has a valid one, else a new trace starts. The span is named
    by the route (``POST /api/v1/payments/notifications``) and ends at teardown."""
    if app.extensions.get("tracing"):
        return
    app.extensions["tracing"] = True
    from flask import g, request

    def start_server_span() -> None:
        parent = propagator.extract(request.headers)
        rule = request.url_rule.rule if request.url_rule is not None else None
        name = f"{request.method} {rule}" if rule else request.method
        attributes: dict[str, Any] = {
            "http.request.method": request.method, "url.path": request.path,
            "url.scheme": request.scheme, "server.address": request.host.split(":")[0],
        }
        if rule:
            attributes["http.route"] = rule
        span = tracer().start_span(name, context=parent, kind=SpanKind.SERVER,
                                   attributes=attributes)
        g._trace_span = span
        g._trace_token = otel_context.attach(trace.set_span_in_context(span, parent))

    def record_status(response):
        span = g.get("_trace_span")
        if span is not None:
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
        return response

    def end_server_span(exc) -> None:
        span = g.pop("_trace_span", None)
        token = g.pop("_trace_token", None)
        if span is None:
            return
        if exc is not None:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        span.end()
        if token is not None:
            otel_context.detach(token)

    # first of the app's hooks: a request refused by another hook is traced too
    app.before_request_funcs.setdefault(None, []).insert(0, start_server_span)
    app.after_request(record_status)
    app.teardown_request(end_server_span)


# -- jobs, subscribers, outbound calls -----------------------------------------------------------


@contextmanager
def job_span(name: str, rq_job=None, correlation_id: str | None = None) -> Iterator[Any]:
    """A CONSUMER span for one RQ job, child of the enqueuer's ``job.meta["traceparent"]``
    (a new trace when the job carries none: periodic jobs)."""
    parent = context_from(rq_job.meta.get(TRACEPARENT)) if rq_job is not None else None
    attributes: dict[str, Any] = {"messaging.system": "rq", "messaging.operation.type": "process"}
    if rq_job is not None:
        attributes["messaging.message.id"] = rq_job.id
        attributes["messaging.destination.name"] = rq_job.origin or ""
    if correlation_id:
        attributes["crm.correlation_id"] = correlation_id
    try:
        with tracer().start_as_current_span(f"job {name}", context=parent,
                                            kind=SpanKind.CONSUMER,
                                            attributes=attributes) as span:
            yield span
    finally:
        flush_if_forked()


@contextmanager
def subscriber_span(subscriber: str, event) -> Iterator[Any]:
    """One span per subscriber call, in the trace of ITS event: a child of the current span
    when that is already in the event's trace (the delivery job), else a child of the event's
    stored ``traceparent`` (linked to the current span). An event without a traceparent: a
    child of the current span."""
    current = trace.get_current_span().get_span_context()
    stored = context_from(getattr(event, "traceparent", None))
    parent = None
    links = []
    if stored is not None:
        stored_ctx = trace.get_current_span(stored).get_span_context()
        if not current.is_valid or current.trace_id != stored_ctx.trace_id:
            parent = stored
            if current.is_valid:
                links.append(Link(current))
    attributes = {"crm.subscriber": subscriber, "crm.event.type": event.type,
                  "crm.event.id": str(event.id)}
    with tracer().start_as_current_span(f"subscriber {subscriber}", context=parent,
                                        kind=SpanKind.INTERNAL, links=links,
                                        attributes=attributes) as span:
        yield span


@dataclass
class ClientCall:
    span: Any
    headers: dict[str, str] = field(default_factory=dict)

    def status(self, code: int) -> None:
        self.span.set_attribute("http.response.status_code", code)
        if code >= 400:
            self.span.set_status(Status(StatusCode.ERROR, f"HTTP {code}"))


@contextmanager
def http_client_span(method: str, url: str, *, system: str,
                     resend_count: int = 0) -> Iterator[ClientCall]:
    """A CLIENT span for one outbound HTTP request; ``call.headers`` holds the ``traceparent``
    to send (its parent is this span). Exceptions (timeouts, refused connections) are recorded
    on the span and re-raised."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    attributes: dict[str, Any] = {
        "http.request.method": method, "url.full": url, "server.address": parts.hostname or "",
        "crm.external_system": system,
    }
    if parts.port:
        attributes["server.port"] = parts.port
    if resend_count:
        attributes["http.request.resend_count"] = resend_count
    with tracer().start_as_current_span(f"{method} {system}", kind=SpanKind.CLIENT,
                                        attributes=attributes) as span:
        yield ClientCall(span, inject_headers())
