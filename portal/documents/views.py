"""Documents: the case view's card (loaded into the page: cases does not import this feature),
upload, opening in the browser and download (each logged), and the visit photo a field agent
takes at a check-in. Thin: parse the form, call the operations, render."""

from __future__ import annotations

import logging
from functools import wraps
from urllib.parse import quote

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from portal import clock
from portal.documents import content, operations, storage
from portal.documents.forms import DocumentForm, VisitPhotoForm
from portal.extensions import csrf, db
from portal.models import Document, Visit
from portal.permissions.decorators import permission_required
from portal.permissions.roles import can

log = logging.getLogger(__name__)
bp = Blueprint("documents", __name__, url_prefix="/documents")

# what a document form sends besides its file (token, kind, account, multipart boundaries)
FORM_MARGIN = 64 * 1024


def takes_a_document(view):
    """A route whose request carries a file: its body may be ``DOCUMENT_MAX_BYTES`` and a
    little more (the app's ``MAX_CONTENT_LENGTH`` is for every other form), so the CSRF check
    reads the body here, under that limit, instead of before the request (CSRFProtect
    would read it under the app's). A body beyond it is refused (413) before it is read; a file
    that goes just past the limit is refused next to the field by the operations."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        limit = current_app.config["DOCUMENT_MAX_BYTES"]
        request.max_content_length = limit + FORM_MARGIN
        try:
            if current_app.config.get("WTF_CSRF_ENABLED", True):
                csrf.protect()
        except RequestEntityTooLarge:
            abort(413, description=_(
                "The file is larger than %(limit)s, the most a document may be: it is "
                "refused. Send a smaller scan or photo.", limit=operations.size_text(limit)))
        return view(*args, **kwargs)

    csrf.exempt(wrapped)
    return wrapped


def _customer(cif: str) -> str:
    if not operations.customer_exists(db.session, cif):
        abort(404)
    return cif


def _card(cif: str, *, values: dict | None = None, errors: dict | None = None,
          message: str | None = None, status: int = 200):
    return render_template(
        "documents/_card.html", cif=cif, listed=operations.documents_of(db.session, cif),
        kind_names=operations.KIND_NAMES, upload_kinds=operations.UPLOAD_KINDS,
        accounts=operations.account_choices(db.session, cif), size_text=operations.size_text,
        can_upload=can("documents.upload"), values=values or {}, errors=errors or {},
        message=message, max_bytes=current_app.config["DOCUMENT_MAX_BYTES"]), status


@bp.get("/customers/<cif>")
@permission_required("documents.view")
def card(cif: str):
    """The case view's documents card."""
    return _card(_customer(cif))


@bp.post("/customers/<cif>")
@takes_a_document
@permission_required("documents.upload")
def upload(cif: str):
    _customer(cif)
    form = DocumentForm()
    stream, filename = form.upload()
    try:
        document = operations.add_document(
            db.session, current_user, cif=cif, kind=form.kind.data,
            account_number=form.account.data, stream=stream, filename=filename,
            now=clock.now(), max_bytes=current_app.config["DOCUMENT_MAX_BYTES"])
    except operations.DocumentRefused as exc:
        db.session.rollback()
        if not request.htmx:  # (a browser without scripts posted the form: back to the case)
            flash(_("Document not uploaded: %(reason)s", reason=" ".join(exc.errors.values())),
                  "error")
            return redirect(url_for("cases.view", cif=cif, _anchor="panel-documents"))
        return _card(cif, values=form.submitted(), errors=exc.errors, status=422)
    operations.commit_or_discard(db.session, document)
    message = _("“%(name)s” uploaded.", name=document.original_name)
    if not request.htmx:
        flash(message, "success")
        return redirect(url_for("cases.view", cif=cif, _anchor="panel-documents"))
    return _card(cif, message=message)


@bp.post("/visits/<int:visit_id>/photo")
@takes_a_document
@permission_required("documents.upload")
def visit_photo(visit_id: int):
    """A photo taken at a visit check-in, from the field agent's phone (back to the day)."""
    visit = db.session.get(Visit, visit_id)
    if visit is None:
        abort(404)
    form = VisitPhotoForm()
    stream, filename = form.upload()
    try:
        document = operations.add_document(
            db.session, current_user, cif=visit.cif, kind="visit_photo", account_number=None,
            stream=stream, filename=filename, now=clock.now(),
            max_bytes=current_app.config["DOCUMENT_MAX_BYTES"], visit=visit)
    except operations.DocumentRefused as exc:
        db.session.rollback()
        flash(_("Photo not attached: %(reason)s", reason=" ".join(exc.errors.values())),
              "error")
        return redirect(url_for("field.visits", _anchor=f"visit-{visit_id}"))
    operations.commit_or_discard(db.session, document)
    flash(_("Photo attached to the visit to %(cif)s.", cif=visit.cif), "success")
    return redirect(url_for("field.visits", _anchor=f"visit-{visit_id}"))


def _send(document_id: int, disposition: str):
    document = db.session.get(Document, document_id)
    if document is None:
        abort(404)
    path = storage.path_of(document.storage_key)
    if storage.file_size(document.storage_key) is None:
        # (flask check invariants reports it too: "documents")
        log.error("document file missing from the store",
                  extra={"document_id": document.id, "storage_key": document.storage_key})
        abort(404)
    if disposition == "inline" and document.content_type not in content.INLINE_TYPES:
        disposition = "attachment"  # (HEIC: browsers cannot show it)
    operations.record_download(db.session, current_user, document, disposition, clock.now())
    db.session.commit()
    response = send_file(path, mimetype=document.content_type, conditional=False,
                         etag=False, max_age=0)
    ascii_name = document.original_name.encode("ascii", "replace").decode().replace(
        "?", "_").replace('"', "_")
    response.headers["Content-Disposition"] = (
        f'{disposition}; filename="{ascii_name}"; '
        f"filename*=UTF-8''{quote(document.original_name, safe='')}")
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
    return response


@bp.get("/<int:document_id>")
@permission_required("documents.view")
def view(document_id: int):
    """The document in the browser (PDF and images), logged."""
    return _send(document_id, "inline")


@bp.get("/<int:document_id>/download")
@permission_required("documents.view")
def download(document_id: int):
    """The document as a file to save, logged."""
    return _send(document_id, "attachment")
