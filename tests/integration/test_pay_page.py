"""The public pay page a pay link opens: no sign-in, the loan's VietQR code with the amount,
the bank's account and the transfer text in the link's language; an altered link is a 404
page, an expired one a 410 page (measured on the product's clock); rate-limited."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest

from portal import clock
from portal.messages.vietqr import (
    crc_ok,
    parse_tlv,
    pay_code,
    pay_link,
    payment_reference,
    read_pay_token,
)

NOW = "2026-11-24T04:00:00+00:00"


@pytest.fixture
def loan(db, frozen_now, make_customer, make_loan):
    frozen_now(NOW)
    return make_loan(make_customer(name="Nguyễn Thị Hằng"), dpd=35,
                     account_number="LD2432800018", due_amount=Decimal("2450000"))


def link_path(app, loan, language="vi", amount=None) -> str:
    with app.app_context():
        url = pay_link(loan.account_number, amount if amount is not None else loan.due_amount,
                       language)
    assert url.startswith(app.config["PUBLIC_BASE_URL"].rstrip("/") + "/pay/")
    return urlsplit(url).path


def test_the_link_opens_the_code_without_signing_in(app, client, loan):
    path = link_path(app, loan, "vi")
    assert len(path) < 80  # it rides in an SMS
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert 'lang="vi"' in html and "Thanh toán khoản vay bằng VietQR" in html
    assert "2.450.000" in html
    reference = payment_reference("LD2432800018")
    assert f'data-testid="pay-reference">{reference}<' in html
    assert app.config["VIETQR_ACCOUNT"] in html
    assert "<svg" in html and "https://" not in html.split("<body", 1)[1]  # no CDN

    english = client.get(path + "?lang=en").get_data(as_text=True)
    assert "Pay your loan by VietQR" in english and "2,450,000" in english

    # the image the page offers holds the code for this loan, amount and reference
    image = client.get(path + "/vietqr.png")
    assert image.status_code == 200 and image.data[:8] == b"\x89PNG\r\n\x1a\n"
    with app.test_request_context():
        link = read_pay_token(path.rsplit("/", 1)[1])
    assert (link.account_number, link.amount, link.language) == (
        "LD2432800018", Decimal("2450000"), "vi")


def test_the_page_shows_the_payload_the_code_encodes(app, client, loan):
    html = client.get(link_path(app, loan, "en")).get_data(as_text=True)
    # segno writes the payload nowhere in the SVG: the page's SVG is the code of this payload
    with app.test_request_context():
        code = pay_code("LD2432800018", Decimal("2450000"))
    assert crc_ok(code.payload)
    fields = parse_tlv(code.payload)
    assert fields["54"] == "2450000"
    assert parse_tlv(fields["62"])["08"] in html
    assert code.svg(scale=5) in html


def test_an_expired_link_is_a_clear_410(app, client, loan, frozen_now):
    path = link_path(app, loan, "vi")
    frozen_now(clock.now() + timedelta(days=app.config["PAY_LINK_MAX_AGE_DAYS"], minutes=1))
    response = client.get(path)
    assert response.status_code == 410
    html = response.get_data(as_text=True)
    assert "Liên kết thanh toán này đã hết hạn" in html
    assert "<svg" not in html and payment_reference("LD2432800018") not in html
    assert client.get(path + "/vietqr.png").status_code == 410


@pytest.mark.parametrize("change", ["amount", "account", "signature", "garbage"])
def test_an_altered_link_is_a_clear_404(app, client, loan, change):
    token = link_path(app, loan, "en").rsplit("/", 1)[1]
    if change == "amount":  # a smaller amount, same signature
        token = token.replace(".2450000.", ".1000.")
    elif change == "account":
        token = token.replace("LD2432800018", "LD2432800017")
    elif change == "signature":
        token = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    else:
        token = "x" * 40
    response = client.get(f"/pay/{token}")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "This payment link is not valid" in html and "<svg" not in html


def test_a_link_to_a_loan_that_is_gone_or_not_in_dong_is_a_404(app, client, loan, db,
                                                               make_loan):
    path = link_path(app, loan)
    db.session.delete(loan)
    db.session.commit()
    assert client.get(path).status_code == 404
    dollars = make_loan(dpd=5, account_number="LD2432800099", currency="USD",
                        due_amount=Decimal("120"))
    assert client.get(link_path(app, dollars)).status_code == 404  # VietQR pays dong only


def test_the_page_is_rate_limited(app, client, loan, monkeypatch):
    monkeypatch.setitem(app.config, "PAY_PAGE_RATE_LIMIT", "3 per minute")
    path = link_path(app, loan)
    statuses = [client.get(path).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_the_token_names_account_amount_and_language_only(app, loan):
    path = link_path(app, loan, "en", amount=Decimal("1500000.4"))
    token = path.rsplit("/", 1)[1]
    assert re.fullmatch(r"LD2432800018\.1500000\.en\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+", token)
