"""Small server-rendered SVG charts for the health cards (no JavaScript, no CDN): a sparkline
of run durations, stacked bars of runs per day/hour (succeeded vs failed) and bars of records
per run. Every bar and point carries a <title> tooltip; numbers are escaped text."""

from __future__ import annotations

from flask_babel import gettext as _
from markupsafe import Markup, escape

from portal import clock
from portal.i18n import format_number
from portal.labels import label

GREEN = "#2f9e6b"
RED = "#d64545"
BLUE = "#2b6fca"
GRID = "#e3e7ec"


def _svg(width: int, height: int, body: str, label: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" height="{height}" '
        f'preserveAspectRatio="none" role="img" aria-label="{escape(label)}">'
        f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" stroke="{GRID}"/>'
        f"{body}</svg>"
    )


def stacked_bars(items: list[dict], *, width: int = 240, height: int = 44,
                 label: str = "runs", words: tuple[str, str] = ("ok", "failed")) -> Markup:
    """``items``: [{"ok": n, "failed": n, "title": str}] oldest first; ``words`` name the two
    parts in the tooltips."""
    if not items:
        return _svg(width, height, "", label)
    peak = max((i["ok"] + i["failed"]) for i in items) or 1
    slot = width / len(items)
    bar = max(2.0, slot * 0.72)
    parts = []
    for n, item in enumerate(items):
        x = n * slot + (slot - bar) / 2
        total = item["ok"] + item["failed"]
        ok_h = (height - 4) * item["ok"] / peak
        failed_h = (height - 4) * item["failed"] / peak
        tip = escape(f"{item['title']}: {item['ok']:,} {words[0]}, {item['failed']:,} {words[1]}")
        if total == 0:
            parts.append(f'<rect x="{x:.1f}" y="{height - 2}" width="{bar:.1f}" height="2" '
                         f'fill="{GRID}"><title>{tip}</title></rect>')
            continue
        y = height - ok_h
        parts.append(f'<g><title>{tip}</title>'
                     f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{ok_h:.1f}" '
                     f'rx="1.5" fill="{GREEN}"/>'
                     f'<rect x="{x:.1f}" y="{y - failed_h:.1f}" width="{bar:.1f}" '
                     f'height="{failed_h:.1f}" rx="1.5" fill="{RED}"/></g>')
    return _svg(width, height, "".join(parts), label)


def sparkline(points: list[dict], *, width: int = 240, height: int = 44,
              label: str = "duration") -> Markup:
    """``points``: [{"value": float | None, "title": str, "failed": bool}] oldest first."""
    values = [p["value"] for p in points if p["value"] is not None]
    if not values:
        return _svg(width, height, "", label)
    peak = max(values) or 1.0
    step = width / max(1, len(points) - 1)
    coords = []
    dots = []
    for n, point in enumerate(points):
        if point["value"] is None:
            continue
        x = n * step if len(points) > 1 else width / 2
        y = height - 3 - (height - 8) * point["value"] / peak
        coords.append((x, y))
        colour = RED if point.get("failed") else BLUE
        radius = 2.6 if point.get("failed") or n == len(points) - 1 else 1.6
        dots.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{colour}">'
                    f'<title>{escape(point["title"])}</title></circle>')
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    area = f"{coords[0][0]:.1f},{height} {line} {coords[-1][0]:.1f},{height}"
    body = (f'<polygon points="{area}" fill="{BLUE}" fill-opacity=".10"/>'
            f'<polyline points="{line}" fill="none" stroke="{BLUE}" stroke-width="1.6" '
            f'stroke-linejoin="round" vector-effect="non-scaling-stroke"/>' + "".join(dots))
    return _svg(width, height, body, label)


def bars(items: list[dict], *, width: int = 240, height: int = 44,
         label: str = "records") -> Markup:
    """``items``: [{"value": n, "title": str, "failed": bool}] oldest first."""
    if not items:
        return _svg(width, height, "", label)
    peak = max(i["value"] or 0 for i in items) or 1
    slot = width / len(items)
    bar = max(2.0, slot * 0.7)
    parts = []
    for n, item in enumerate(items):
        value = item["value"] or 0
        h = max(1.5, (height - 4) * value / peak)
        x = n * slot + (slot - bar) / 2
        colour = RED if item.get("failed") else "#7d9cc7"
        parts.append(f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{bar:.1f}" '
                     f'height="{h:.1f}" rx="1.5" fill="{colour}">'
                     f'<title>{escape(item["title"])}</title></rect>')
    return _svg(width, height, "".join(parts), label)


def format_duration_ms(value) -> str:
    if value is None:
        return "—"
    ms = float(value)
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{format_number(ms / 1000, 1)} s"
    if ms < 3_600_000:
        return f"{format_number(ms / 60_000, 1)} min"
    return f"{format_number(ms / 3_600_000, 1)} h"


def card_charts(card) -> dict[str, Markup]:
    """The three charts of a health card."""
    runs = [r for r in reversed(card.recent) if r["status"] not in ("running", "skipped")]
    daily = stacked_bars(
        [{"ok": d["ok"], "failed": d["failed"], "title": d["day"].strftime("%d/%m")}
         for d in card.daily], label=_("%(name)s: runs per day, last 7 days", name=card.spec.label),
        words=(_("ok"), _("failed")))
    hourly = stacked_bars(
        [{"ok": h["ok"], "failed": h["failed"],
          "title": _("this hour") if h["hours_ago"] == 0
          else _("%(num)s h ago", num=h["hours_ago"])}
         for h in card.hourly],
        label=_("%(name)s: runs per hour, last 24 hours", name=card.spec.label),
        words=(_("ok"), _("failed")))
    duration = sparkline(
        [{"value": r["duration"], "failed": r["status"] == "failed",
          "title": _("run %(id)s", id=r["id"]) + f" · {label(r['status'])} · "
                   f"{format_duration_ms(r['duration'])}"}
         for r in runs], label=_("%(name)s: duration of recent runs", name=card.spec.label))
    records = bars(
        [{"value": r["loaded"], "failed": r["status"] == "failed",
          "title": _("run %(id)s", id=r["id"]) + " · " + _(
              "%(loaded)s loaded of %(extracted)s", loaded=format_number(r["loaded"]),
              extracted=format_number(r["extracted"]))}
         for r in runs], label=_("%(name)s: records loaded per run", name=card.spec.label))
    charts = {"daily": daily, "hourly": hourly, "duration": duration, "records": records}
    if card.traffic is not None:
        zone = clock.bank_zone()
        charts["traffic"] = stacked_bars(
            [{"ok": h["accepted"], "failed": h["refused"],
              "title": f"{h['hour'].astimezone(zone):%H:00}"} for h in card.traffic.hourly],
            width=480, label=_("%(name)s: requests per hour, last 24 hours",
                               name=card.spec.label),
            words=(_("accepted"), _("refused")))
    return charts
