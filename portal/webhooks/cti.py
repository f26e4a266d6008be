"""Inbound call-centre (CTI) events: ``POST /api/v1/cti/events``, signed like the payment
webhooks (portal/signing.py: secrets ``CTI_WEBHOOK_SECRETS``, scheme ``CTI_WEBHOOK_SCHEME``,
crm-hmac or Standard Webhooks).

One event per request: ``{"event_id", "type", "occurred_at", "data"}`` with ``type`` one of
call.started, call.answered, call.ended, agent.status_changed (docs/integrations.md, "Call
centre"). 200 with what was done; 400 an unreadable event (the field at fault: ``body`` when
it is not a JSON object); 401 a bad signature; 413 a body over ``CTI_WEBHOOK_MAX_BYTES``
(64 KiB by default; an event is a few hundred bytes), not read beyond the limit. An unknown
phone number or agent is accepted (the call is flagged unmatched).

Each applied event leaves a receipt in the same transaction (portal/webhook_receipts.py): a
resend of the message (same ``webhook-id``, or same ``event_id`` in crm-hmac, same body) is
answered 200 with the first answer and applied no second time; the same id with another body
is 409 ``message_conflict``. A Standard Webhooks message without ``event_id`` takes its
``webhook-id`` as the event id.
"""

from __future__ import annotations

import json
import logging

from flask import current_app, jsonify, request
from sqlalchemy.exc import IntegrityError, OperationalError

from portal import signing, webhook_receipts
from portal.calls import cti_events
from portal.calls import operations as calls
from portal.extensions import db
from portal.ops import traffic
from portal.permissions.decorators import public
from portal.text import first_unstorable
from portal.webhook_receipts import REPLAYED_HEADER, MessageConflict
from portal.webhooks.views import bp

log = logging.getLogger(__name__)
DEFAULT_MAX_BYTES = 64 * 1024


def _refused(status: int, code: str, message: str, field: str | None):
    response = jsonify({"error": {"code": code, "message": message, "field": field}})
    response.status_code = status
    return response


@bp.post("/cti/events")
@traffic.counted("CTI")
@public
def cti_event():
    limit = int(current_app.config.get("CTI_WEBHOOK_MAX_BYTES") or DEFAULT_MAX_BYTES)
    announced = request.content_length or 0
    body = b"" if announced > limit else request.stream.read(limit + 1)
    if announced > limit or len(body) > limit:
        return _refused(413, "body_too_large", f"the body is larger than {limit} bytes",
                        "body")
    config = current_app.config
    try:
        verified = signing.verify_message(
            request.headers, body, config.get("CTI_WEBHOOK_SECRETS"),
            schemes=signing.parse_schemes(config.get("CTI_WEBHOOK_SCHEME")))
    except signing.SignatureError as exc:
        log.warning("cti webhook refused", extra={"code": exc.code})
        return jsonify(exc.to_json()), 401
    try:
        payload = json.loads(body or b"null")
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested absurdly deep
        return _refused(400, "bad_json", "the body is not JSON", "body")
    if not isinstance(payload, dict):
        return _refused(400, "bad_request", "the body must be a JSON object", "body")
    where = first_unstorable(payload)
    if where is not None:
        return _refused(400, "bad_field", f"{where} holds a NUL or an invalid character",
                        where)
    try:
        event = cti_events.parse_event(payload, default_event_id=verified.message_id)
    except cti_events.CtiEventError as exc:
        return jsonify(exc.to_json()), 400
    message = webhook_receipts.message("CTI", verified, body, event.event_id)
    for attempt in range(3):  # a deadlock between two events of one call: try again
        try:
            # CTI_ASYNC_COMMIT: commit without waiting for the WAL flush; a database crash may
            # lose the last acknowledged events (< 1 s): their calls come back with the daily
            # reconciliation against the call centre's call list
            result = calls.apply_event(
                db.session, event, async_commit=config.get("CTI_ASYNC_COMMIT", True))
            webhook_receipts.record(db.session, message, 200, result)
            db.session.commit()
            break
        except cti_events.CtiEventError as exc:
            db.session.rollback()
            return jsonify(exc.to_json()), 400
        except IntegrityError as exc:  # this message was applied before: undo, answer as then
            db.session.rollback()
            if not webhook_receipts.is_receipt_conflict(exc):
                raise
            return _stored_answer(message)
        except OperationalError:
            db.session.rollback()
            if attempt == 2:
                raise
    log.debug("cti event", extra={"event_id": event.event_id, "type": event.type})
    return jsonify(result), 200


def _stored_answer(message: webhook_receipts.Message):
    try:
        stored = webhook_receipts.stored(db.session, message)
    except MessageConflict as exc:
        db.session.rollback()
        log.warning("cti webhook refused", extra={"code": exc.code})
        return jsonify(exc.to_json()), 409
    db.session.rollback()
    if stored is None:  # pragma: no cover - a receipt conflict leaves a receipt behind
        return _refused(409, "message_conflict", "the message conflicts with another one",
                        message.id_field)
    response = jsonify(stored)
    response.headers[REPLAYED_HEADER] = "true"
    return response
