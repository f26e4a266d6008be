"""Inbound call-centre (CTI) events: ``POST /api/v1/cti/events``, signed like the payment
webhooks (portal/webhooks/signing.py, secrets ``CTI_WEBHOOK_SECRETS``).

One event per request: ``{"event_id", "type", "occurred_at", "data"}`` with ``type`` one of
call.started, call.answered, call.ended, agent.status_changed (docs/integrations.md, "Call
centre"). 200 with what was done; 400 an unreadable event (the field at fault); 401 a bad
signature. An unknown phone number or agent is accepted (the call is flagged unmatched).
"""

from __future__ import annotations

import json
import logging

from flask import current_app, jsonify, request
from sqlalchemy.exc import OperationalError

from portal.extensions import db
from portal.permissions import public
from portal.services import calls
from portal.webhooks import bp
from portal.webhooks.signing import SignatureError, verify

log = logging.getLogger(__name__)


@bp.post("/cti/events")
@public
def cti_event():
    body = request.get_data(cache=False)
    try:
        verify(request.headers, body, current_app.config.get("CTI_WEBHOOK_SECRETS"))
    except SignatureError as exc:
        log.warning("cti webhook refused", extra={"code": exc.code})
        return jsonify(exc.to_json()), 401
    try:
        event = calls.parse_event(json.loads(body or b"null"))
    except ValueError as exc:  # json errors and CtiEventError
        error = exc if isinstance(exc, calls.CtiEventError) else \
            calls.CtiEventError("bad_json", "the body is not JSON", None)
        return jsonify(error.to_json()), 400
    for attempt in range(3):  # a deadlock between two events of one call: try again
        try:
            # CTI_ASYNC_COMMIT: commit without waiting for the WAL flush; a database crash may
            # lose the last acknowledged events (< 1 s): their calls come back with the daily
            # reconciliation against the call centre's call list
            result = calls.apply_event(
                db.session, event, async_commit=current_app.config.get("CTI_ASYNC_COMMIT", True))
            db.session.commit()
            break
        except calls.CtiEventError as exc:
            db.session.rollback()
            return jsonify(exc.to_json()), 400
        except OperationalError:
            db.session.rollback()
            if attempt == 2:
                raise
    log.debug("cti event", extra={"event_id": event.event_id, "type": event.type})
    return jsonify(result), 200
