"""``POST /api/v1/payments/notifications``: the payment system's signed notifications.

Thin: read at most the size limit, hand the bytes to portal.payments.notifications (signature,
validation, exactly-once storage with its event, rejection log) and answer its JSON.
Wire format and error codes: docs/integrations.md, "Payment system".
"""

from __future__ import annotations

from flask import jsonify, request

from portal.extensions import db
from portal.ops import traffic
from portal.payments import notifications
from portal.permissions.decorators import public
from portal.webhook_receipts import REPLAYED_HEADER
from portal.webhooks.views import bp


@bp.post("/payments/notifications")
@traffic.counted("PAYMENTS")
@public  # authenticated by its HMAC signature (either scheme), not by a session or token
def payment_notification():
    limit = notifications.webhook_settings().max_bytes
    announced = request.content_length or 0
    # never read more than the limit (plus one byte, to know it was exceeded); of a body
    # announced too large, only its start (for the rejection log)
    body = request.stream.read(4096 if announced > limit else limit + 1)
    answer = notifications.receive_webhook(
        db.session, body=body, headers=request.headers, body_size=announced,
        remote_addr=request.remote_addr,
    )
    response = jsonify(answer.body)
    response.status_code = answer.status
    if answer.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response
