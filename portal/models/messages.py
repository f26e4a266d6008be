"""Outbound messages: templates per channel (SMS, e-mail, letter) in Vietnamese and English,
and every message the product sends, holds or fails to send — from a strategy's daily run or
one-off from the case view."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, TimestampMixin, sql_in

MESSAGE_CHANNELS = ("sms", "email", "letter")
# queued: waiting for its channel; sent: the gateway / SMTP / print batch took it; delivered: the
# gateway reported delivery (SMS) or the letter went to the print vendor; failed: retries spent or
# refused for good; held: a contact rule stopped it (hold_reason says which)
MESSAGE_STATUSES = ("queued", "sent", "delivered", "failed", "held")
MESSAGE_SOURCES = ("manual", "strategy")


class MessageTemplate(Base, TimestampMixin):
    """A message's text per language, with ``{variables}`` filled from the account
    (portal.messages). ``code`` is what strategies' steps and the case view refer to."""

    __tablename__ = "message_templates"
    __table_args__ = (
        CheckConstraint(f"channel {sql_in(*MESSAGE_CHANNELS)}", name="channel"),
        CheckConstraint("code ~ '^[A-Z0-9_]{2,40}$'", name="code_format"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    channel: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(120))
    subject_vi: Mapped[str | None] = mapped_column(String(200))  # e-mail and letter
    subject_en: Mapped[str | None] = mapped_column(String(200))
    body_vi: Mapped[str] = mapped_column(Text)
    body_en: Mapped[str] = mapped_column(Text)
    include_vietqr: Mapped[bool] = mapped_column(default=False, server_default="false")
    active: Mapped[bool] = mapped_column(default=True, server_default="true")
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)


class Message(Base, TimestampMixin):
    """One message to one contact point of one customer. ``dedupe_key`` makes a strategy's
    daily run idempotent per business date (``strategy:<date>:<account>:<step id>``); a
    one-off message has none. Its timeline entry is ``action_id``."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(f"channel {sql_in(*MESSAGE_CHANNELS)}", name="channel"),
        CheckConstraint(f"status {sql_in(*MESSAGE_STATUSES)}", name="status"),
        CheckConstraint(f"source {sql_in(*MESSAGE_SOURCES)}", name="source"),
        CheckConstraint("(status = 'held') = (hold_reason IS NOT NULL)", name="held_has_reason"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        Index("uq_messages_dedupe_key", "dedupe_key", unique=True,
              postgresql_where=text("dedupe_key IS NOT NULL")),
        Index("uq_messages_channel_provider_id", "channel", "provider_id", unique=True,
              postgresql_where=text("provider_id IS NOT NULL")),
        Index("ix_messages_cif_created", "cif", "created_at"),
        # the dispatcher's scan: queued messages whose next attempt is due
        Index("ix_messages_due", "next_attempt_at", postgresql_where=text("status = 'queued'")),
        Index("ix_messages_business_date_status", "business_date", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cif: Mapped[str] = mapped_column(
        String(32), ForeignKey("customers.cif", onupdate="CASCADE", ondelete="CASCADE"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"),
                                                index=True)
    account_number: Mapped[str | None] = mapped_column(String(32))  # loan or card contract
    channel: Mapped[str] = mapped_column(String(8))
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("message_templates.id", ondelete="SET NULL"), index=True)
    language: Mapped[str] = mapped_column(String(2), default="vi", server_default="vi")
    # the contact point: one of phone (sms), email (email), address (letter)
    phone_id: Mapped[int | None] = mapped_column(ForeignKey("phones.id", ondelete="SET NULL"))
    email_id: Mapped[int | None] = mapped_column(ForeignKey("emails.id", ondelete="SET NULL"))
    address_id: Mapped[int | None] = mapped_column(
        ForeignKey("addresses.id", ondelete="SET NULL"))
    recipient: Mapped[str | None] = mapped_column(String(320))  # E.164 number / address text
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[str] = mapped_column(String(12), default="queued", server_default="queued")
    hold_reason: Mapped[str | None] = mapped_column(String(40))  # a code, labelled on screen
    status_detail: Mapped[str | None] = mapped_column(String(500))  # the provider's words
    provider_id: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    business_date: Mapped[date]
    source: Mapped[str] = mapped_column(String(12), default="manual", server_default="manual")
    dedupe_key: Mapped[str | None] = mapped_column(String(120))
    strategy_assignment_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("strategy_assignments.id", ondelete="SET NULL"), index=True)
    payment_reference: Mapped[str | None] = mapped_column(String(40))  # VietQR reference
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    action_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("actions.id", ondelete="SET NULL"))
    correlation_id: Mapped[str | None] = mapped_column(String(64))

    template = relationship("MessageTemplate")
