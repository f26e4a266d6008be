"""Issue 19, findings 17 and 20: ops find the payments reconciliation in the navigation, and
ops home says each integration's schedule in words, with its next run in bank time (never a
raw cron string)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from portal import clock
from portal.models import IntegrationSetting
from portal.models.enums import INTEGRATIONS

CRON = re.compile(r"(?<![\w:/])(?:[\d*/,-]+\s+){4}[\d*/,-]+(?![\w:/])")


def main_nav(page: str) -> str:
    return page.split('<nav class="nav" aria-label="Main">', 1)[1].split("</nav>", 1)[0]


def nav_links(page: str) -> dict[str, str]:
    """{label: href} of the main navigation."""
    return {label: href for href, label in
            re.findall(r'<a href="([^"]+)"[^>]*>.*?<span>([^<]+)</span></a>', main_nav(page),
                       flags=re.S)}


def test_ops_see_reconciliation_in_the_navigation(client, login_as):
    login_as("ops")
    links = nav_links(client.get("/").get_data(as_text=True))
    assert links.get("Reconciliation") == "/payments/reconciliation"
    nav = main_nav(client.get("/payments/rejected").get_data(as_text=True))
    link = re.search(r'<a href="/payments/reconciliation"[^>]*>', nav).group(0)
    assert 'aria-current="page"' in link  # its pages keep it marked
    login_as("agent")
    assert "Reconciliation" not in nav_links(client.get("/").get_data(as_text=True))


def test_ops_home_says_schedules_in_words_with_the_next_run_in_bank_time(db, client,
                                                                         login_as):
    for name in INTEGRATIONS:  # as the demo seed stores them: cron strings
        db.session.add(IntegrationSetting(integration=name, enabled=True, schedule="0 2 * * *"))
    db.session.commit()
    login_as("ops")
    page = client.get("/").get_data(as_text=True)
    table = page.split('data-testid="integrations"', 1)[1].split("</table>", 1)[0]
    assert not CRON.search(table), CRON.search(table).group(0)
    now = clock.now()
    for name in ("T24", "W4", "LOS", "PAYMENTS", "CTI"):
        cell = re.search(rf'data-testid="schedule-{name}">(.*?)</td>', table, re.S).group(1)
        words = re.match(r"(Synced|Real time; reconciled) daily at (\d\d:\d\d)", cell)
        assert words, cell
        nxt = re.search(r"next (\d\d/\d\d/\d{4} \d\d:\d\d)", cell).group(1)
        assert nxt.endswith(words.group(2)), (name, cell)
        at = datetime.strptime(nxt, "%d/%m/%Y %H:%M").replace(tzinfo=clock.bank_zone())
        assert now - timedelta(minutes=1) < at <= now + timedelta(days=1), (name, cell)
    gps = re.search(r'data-testid="schedule-GPS">(.*?)</td>', table, re.S).group(1)
    assert gps.startswith("Real time; forwarded every minute")
