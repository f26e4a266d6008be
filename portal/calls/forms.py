"""The manual call form: the action form plus what the agent says about the call itself."""

from __future__ import annotations

from datetime import datetime, time

from flask_babel import gettext as _

from portal import clock
from portal.calls.operations import ManualCall
from portal.cases.forms import ActionForm
from portal.forms import RawField, SubmittedForm, row_id


def _started_at(raw: str | None) -> datetime | None:
    """A time of today's bank day, HH:MM."""
    if not raw or not raw.strip():
        return None
    try:
        local = datetime.combine(clock.bank_today(), time.fromisoformat(raw.strip()),
                                 tzinfo=clock.bank_zone())
    except ValueError as exc:
        raise ValueError(_("Enter the time as HH:MM.")) from exc
    return local.astimezone(clock.now().tzinfo)


def _duration_seconds(raw: str | None) -> int | None:
    """Minutes, with a decimal point or comma."""
    if not raw or not raw.strip():
        return None
    try:
        return int(round(float(raw.strip().replace(",", ".")) * 60))
    except ValueError as exc:
        raise ValueError(_("Enter the length in minutes, e.g. 3 or 2.5.")) from exc


class StatusForm(SubmittedForm):
    """The agent's own status (available, break, offline): agent_status checks the choice."""

    status = RawField("Status")


class DialForm(SubmittedForm):
    cif = RawField("Customer")
    phone_id = RawField("Number", parse=row_id)


class ManualCallForm(ActionForm):
    cif = RawField("Customer")
    direction = RawField("Direction")
    started_time = RawField("Time", parse=_started_at)
    duration_minutes = RawField("Minutes", parse=_duration_seconds)

    # field -> the key its error is shown under
    CALL_ERROR_KEYS = {"started_time": "started_at", "duration_minutes": "duration"}

    def manual_call(self) -> tuple[ManualCall, dict[str, str]]:
        data, errors = self.action_input()
        errors = {self.CALL_ERROR_KEYS.get(k, k): v for k, v in errors.items()}
        call = ManualCall(phone_id=self.phone_id.data, direction=self.direction.data or "outbound",
                          started_at=self.started_time.data,
                          duration_s=self.duration_minutes.data, action=data)
        return call, errors
