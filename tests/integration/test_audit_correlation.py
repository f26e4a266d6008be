"""The audit log carries the correlation id of the work that made the change: the request's
``X-Request-ID`` (or the id the portal made for it and returned in that header)."""

from __future__ import annotations

from sqlalchemy import select

from portal.models import AuditLog


def test_a_change_made_through_a_request_has_its_request_id_on_the_audit_row(
        client, db, login_as, csrf_token, make_action_code):
    login_as("admin")
    code = make_action_code(label="Voicemail")
    token = csrf_token("/admin/action-codes")
    response = client.post(f"/admin/action-codes/{code.id}/toggle",
                           headers={"X-CSRFToken": token, "X-Request-ID": "req-audit-42"})
    assert response.status_code == 302
    assert response.headers["X-Request-ID"] == "req-audit-42"
    row = db.session.scalar(select(AuditLog).where(AuditLog.action == "action_code.update"))
    assert row.correlation_id == "req-audit-42"


def test_without_a_request_id_the_audit_row_has_the_one_the_portal_made(
        client, db, login_as, csrf_token, make_action_code):
    login_as("admin")
    code = make_action_code(label="Voicemail")
    token = csrf_token("/admin/action-codes")
    response = client.post(f"/admin/action-codes/{code.id}/toggle",
                           headers={"X-CSRFToken": token, "X-Correlation-ID": "not-this-one"})
    assert response.status_code == 302
    row = db.session.scalar(select(AuditLog).where(AuditLog.action == "action_code.update"))
    assert row.correlation_id == response.headers["X-Request-ID"] != "not-this-one"
