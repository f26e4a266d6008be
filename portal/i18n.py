"""Languages and formats: which language a page speaks, and how it writes numbers, dates and
times — one place for both (money has its own rule in portal/money.py, on these numbers).

- **The language** of a request: the signed-in user's choice (``users.language``), else the one
  picked on the sign-in page (kept in the session), else ``DEFAULT_LANGUAGE`` (``vi`` for this
  deployment). Outside a request (a worker, the CLI): ``DEFAULT_LANGUAGE``.
- **Numbers** by the locale's CLDR rules (Babel): 1.234.567 in Vietnamese, 1,234,567 in English.
- **Dates and times** in the bank's zone, in the bank's order in both languages (dd/MM/yyyy,
  24-hour clock), with day names in the page's language. Templates keep passing strftime-style
  formats (``|datetime("%d/%m %H:%M")``); they are read as CLDR patterns here.
- **Relative times** ("5 phút trước" / "5 minutes ago") by Babel's CLDR data.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from babel import Locale
from babel.dates import format_datetime as babel_datetime
from babel.dates import format_timedelta
from babel.numbers import format_decimal
from flask import current_app, has_app_context, has_request_context, session
from flask_babel import get_locale, gettext
from flask_login import current_user

from portal import clock

# Each language named in itself: the language menu shows these words untranslated.
LANGUAGES = {"vi": "Tiếng Việt", "en": "English"}
FALLBACK_LANGUAGE = "vi"
SESSION_KEY = "language"
NONE = "—"  # what a page shows for no value, in every language

# strftime directives the templates use, as CLDR date pattern fields
_STRFTIME_TO_CLDR = {"%A": "EEEE", "%a": "EEE", "%d": "dd", "%m": "MM", "%Y": "yyyy",
                     "%H": "HH", "%M": "mm", "%S": "ss"}
_DIRECTIVE = re.compile(r"%[A-Za-z]")


def default_language() -> str:
    configured = current_app.config.get("DEFAULT_LANGUAGE") if has_app_context() else None
    return configured if configured in LANGUAGES else FALLBACK_LANGUAGE


def supported(code: str | None) -> str | None:
    """``code`` when it is a language the portal speaks, else None."""
    return code if code in LANGUAGES else None


def select_locale() -> str:
    """Flask-Babel's locale selector: the user's language, the session's, the deployment's
    (outside a request — a worker, the CLI, a test's app context — the deployment's)."""
    if not has_request_context():
        return default_language()
    if current_user and current_user.is_authenticated:
        chosen = supported(getattr(current_user, "language", None))
        if chosen:
            return chosen
    return supported(session.get(SESSION_KEY)) or default_language()


def current_locale() -> Locale:
    """The locale formats use: the request's, else the deployment's default."""
    if has_request_context():
        return get_locale() or Locale.parse(default_language())
    return Locale.parse(default_language())


def format_number(value, places: int | None = None) -> str:
    """``value`` grouped by the locale (1.234.567 / 1,234,567); ``places`` fixes the decimals."""
    if value is None:
        return NONE
    pattern = "#,##0" + ("." + "0" * places if places else "") if places is not None else None
    return format_decimal(value, format=pattern, locale=current_locale())


def cldr_pattern(strftime_format: str) -> str:
    """A strftime format ("%a %d/%m %H:%M") as a CLDR pattern ("EEE dd/MM HH:mm"); the text
    between directives is quoted, so letters in it are printed, not read as fields."""
    parts, last = [], 0
    for match in _DIRECTIVE.finditer(strftime_format):
        literal = strftime_format[last:match.start()]
        if literal:
            parts.append(_quoted(literal))
        parts.append(_STRFTIME_TO_CLDR.get(match.group(), ""))
        last = match.end()
    if strftime_format[last:]:
        parts.append(_quoted(strftime_format[last:]))
    return "".join(parts)


def _quoted(literal: str) -> str:
    if not re.search(r"[A-Za-z']", literal):
        return literal
    return "'" + literal.replace("'", "''") + "'"


def format_datetime(value: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    """A timestamp (UTC when naive) in the bank's zone, in the page's language."""
    if value is None:
        return NONE
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return babel_datetime(value.astimezone(clock.bank_zone()), cldr_pattern(fmt),
                          locale=current_locale())


def format_date(value: date | datetime | None, fmt: str = "%d/%m/%Y") -> str:
    if value is None:
        return NONE
    if isinstance(value, datetime):
        return format_datetime(value, fmt)
    return babel_datetime(datetime(value.year, value.month, value.day), cldr_pattern(fmt),
                          locale=current_locale())


def format_ago(value: datetime | None) -> str:
    """How long ago ``value`` was, in the page's language ("5 phút trước", "2 days ago")."""
    if value is None:
        return gettext("never")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - clock.now()
    if abs(delta.total_seconds()) < 60:
        return gettext("just now")
    return format_timedelta(delta, add_direction=True, threshold=1, locale=current_locale())
