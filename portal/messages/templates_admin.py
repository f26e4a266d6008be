"""Message templates: list, create, edit, retire (supervisors and admins). One template per
``code`` (what strategies' steps and the case view refer to), per channel, with Vietnamese and
English texts whose ``{variables}`` must be known ones (portal/messages/rendering.py)."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.sms.segments import sms_segments
from portal import audit
from portal.messages.rendering import VARIABLES, unknown_variables
from portal.models import MessageTemplate
from portal.models.messages import MESSAGE_CHANNELS

CODE_RE = re.compile(r"^[A-Z0-9_]{2,40}$")
TEXT_FIELDS = ("subject_vi", "subject_en", "body_vi", "body_en")
LIMITS = {"name": 120, "subject_vi": 200, "subject_en": 200, "body_vi": 5000, "body_en": 5000}
SMS_MAX_SEGMENTS = 6


class TemplateError(ValueError):
    def __init__(self, errors: dict[str, str], status: int = 422):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
        self.status = status


def templates(session: Session, *, channel: str | None = None,
              active_only: bool = False) -> list[MessageTemplate]:
    query = select(MessageTemplate).order_by(MessageTemplate.active.desc(),
                                             MessageTemplate.channel, MessageTemplate.code)
    if channel:
        query = query.where(MessageTemplate.channel == channel)
    if active_only:
        query = query.where(MessageTemplate.active.is_(True))
    return list(session.scalars(query))


def _snapshot(template: MessageTemplate) -> dict:
    return {name: getattr(template, name) for name in
            ("code", "channel", "name", *TEXT_FIELDS, "include_vietqr", "active")}


def _clean(values: dict[str, Any], template: MessageTemplate | None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    code = (values.get("code") or "").strip().upper() if template is None else template.code
    if not CODE_RE.match(code):
        errors["code"] = _("2 to 40 capital letters, digits or _, e.g. SMS_REMINDER_DPD3.")
    clean["code"] = code
    channel = values.get("channel") if template is None else template.channel
    if channel not in MESSAGE_CHANNELS:
        errors["channel"] = _("Choose SMS, e-mail or letter.")
    clean["channel"] = channel
    for name in ("name", *TEXT_FIELDS):
        text = (values.get(name) or "").replace("\r\n", "\n").strip()
        if len(text) > LIMITS[name]:
            errors[name] = _("At most %(num)d characters.", num=LIMITS[name])
        clean[name] = text or None
    if not clean["name"]:
        errors["name"] = _("Give the template a name.")
    for name in ("body_vi", "body_en"):
        if not clean[name]:
            errors.setdefault(name, _("Write the message text."))
    if channel in ("email", "letter"):
        for name in ("subject_vi", "subject_en"):
            if not clean[name]:
                errors.setdefault(name, _("Write a subject."))
    else:
        clean["subject_vi"] = clean["subject_en"] = None
    for name in TEXT_FIELDS:
        unknown = unknown_variables(clean[name])
        if unknown and name not in errors:
            errors[name] = _("Unknown variable: %(names)s. Use %(known)s.",
                             names=", ".join(f"{{{n}}}" for n in unknown),
                             known=", ".join(f"{{{n}}}" for n in VARIABLES))
    if channel == "sms":
        for name in ("body_vi", "body_en"):
            if clean[name] and name not in errors \
                    and sms_segments(clean[name])[1] > SMS_MAX_SEGMENTS:
                errors[name] = _("Too long for an SMS: at most %(num)d segments.",
                                 num=SMS_MAX_SEGMENTS)
    clean["include_vietqr"] = bool(values.get("include_vietqr"))
    if template is None and not errors.get("code") and clean["code"]:
        clean["_new"] = True
    if errors:
        raise TemplateError(errors)
    return clean


def save_template(session: Session, actor: Any, template: MessageTemplate | None,
                  values: dict[str, Any]) -> MessageTemplate:
    """Create (``template`` None) or edit a template from submitted ``values``; raises
    TemplateError with an error per field. Code and channel are fixed once created (steps
    and messages refer to them). Audited; no commit."""
    clean = _clean(values, template)
    clean.pop("_new", None)
    if template is None:
        if session.scalar(select(MessageTemplate.id).where(
                MessageTemplate.code == clean["code"])):
            raise TemplateError({"code": _("A template with this code exists already.")})
        template = MessageTemplate(**clean, updated_by_id=getattr(actor, "id", None))
        session.add(template)
        session.flush()
        audit.record(session, actor, "message_template.create", "message_template",
                     template.id, after=_snapshot(template))
        return template
    before = _snapshot(template)
    for name, value in clean.items():
        if name not in ("code", "channel"):
            setattr(template, name, value)
    template.updated_by_id = getattr(actor, "id", None)
    audit.record_changes(session, actor, "message_template.update", "message_template",
                         template.id, before, _snapshot(template))
    return template


def set_active(session: Session, actor: Any, template: MessageTemplate,
               active: bool) -> bool:
    """Retire a template (no new message uses it; sent ones keep their text) or bring it
    back; audited. False when nothing changed. No commit."""
    if template.active == active:
        return False
    before = _snapshot(template)
    template.active = active
    template.updated_by_id = getattr(actor, "id", None)
    audit.record(session, actor, "message_template.retire" if not active
                 else "message_template.update", "message_template", template.id,
                 before=before, after=_snapshot(template))
    return True
