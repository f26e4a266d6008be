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
from portal.webhooks.views import bp


@bp.post("/payments/notifications")
@traffic.counted("PAYMENTS")
@public  # authenticated by its HMAC signature, not by a session or token
def payment_notification():
    _, _, limit = notifications.webhook_settings()
    announced = request.content_length or 0
    # never read more than the limit (plus one byte, to know it was exceeded); of a body
    # announced too large, only its start (for the rejection log)
    body = request.stream.read(4096 if announced > limit else limit + 1)
    status, payload = notifications.receive_webhook(
        db.session, body=body, headers=request.headers, body_size=announced,
        remote_addr=request.remote_addr,
    )
    response = jsonify(payload)
    response.status_code = status
    return response
