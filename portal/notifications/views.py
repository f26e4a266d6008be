"""The inbox page, mark read (one / all, HTMX), and the unread counter polled by the top bar."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user

from portal.extensions import db, partial_request
from portal.models import Notification
from portal.notifications import operations as inbox
from portal.notifications.forms import MarkAllReadForm
from portal.notifications.messages import shown
from portal.permissions.decorators import permission_required, safe_next

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

PAGE_SIZE = 30


def _counter():
    return render_template("notifications/_counter.html",
                           unread=inbox.unread_count(db.session, current_user.id))


@bp.get("/")
@permission_required("portal.access")
def index():
    show = request.args.get("show", "all")
    unread_only = show == "unread"
    page = max(1, request.args.get("page", 1, type=int) or 1)
    total = inbox.count_notifications(db.session, current_user.id, unread_only=unread_only)
    rows = inbox.list_notifications(db.session, current_user.id, unread_only=unread_only,
                                    limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return render_template(
        "notifications/index.html", notifications=rows, show=show, page=page, total=total,
        pages=max(1, -(-total // PAGE_SIZE)),
        unread=inbox.unread_count(db.session, current_user.id), kinds=inbox.KIND_LABELS,
        shown=shown,
    )


@bp.get("/unread-count")
@permission_required("portal.access")
def unread_count():
    return _counter()


def _read_own(notification_id: int) -> Notification:
    """The current user's notification ``notification_id`` (404 for anyone else's), marked
    read and committed."""
    row = db.session.get(Notification, notification_id)
    if row is None or row.user_id != current_user.id:
        abort(404)
    inbox.mark_read(db.session, current_user.id, [notification_id])
    db.session.commit()
    return row


@bp.post("/<int:notification_id>/read")
@permission_required("portal.access")
def mark_read(notification_id: int):
    row = _read_own(notification_id)
    db.session.refresh(row)
    if partial_request():
        # the row, plus the top-bar counter out of band
        return render_template("notifications/_row.html", n=row, kinds=inbox.KIND_LABELS,
                               shown=shown, oob_counter=True,
                               unread=inbox.unread_count(db.session, current_user.id))
    return redirect(url_for("notifications.index"))


@bp.post("/read-all")
@permission_required("portal.access")
def mark_all_read():
    inbox.mark_read(db.session, current_user.id)
    db.session.commit()
    return redirect(url_for("notifications.index", show=MarkAllReadForm().list_shown()))


@bp.get("/<int:notification_id>/open")
@permission_required("portal.access")
def open_notification(notification_id: int):
    """Mark read and follow the notification's link."""
    row = _read_own(notification_id)

    return redirect(safe_next(row.link) or url_for("notifications.index"))
