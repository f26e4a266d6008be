"""The inbox: service, page, mark read (HTMX and plain), the unread counter in the top bar."""

from __future__ import annotations

import re
from datetime import timedelta

from portal import clock
from portal.models import Notification
from portal.notifications.operations import list_notifications, mark_read, notify, unread_count


def add(db, user, title="Promise broken: Le Van Hung", **kwargs):
    kwargs.setdefault("kind", "promise_broken")
    note = notify(db.session, user.id, title=title, **kwargs)
    db.session.commit()
    return note


def test_service_counts_lists_and_marks_only_the_owners_notifications(db, make_user):
    me, other = make_user(), make_user()
    first = add(db, me, "first")
    second = add(db, me, "second", kind="payment_received")
    theirs = add(db, other, "theirs")
    assert unread_count(db.session, me.id) == 2
    assert [n.title for n in list_notifications(db.session, me.id)] == ["second", "first"]
    # someone else's id is ignored
    assert mark_read(db.session, me.id, [first.id, theirs.id]) == 1
    db.session.commit()
    assert unread_count(db.session, me.id) == 1 and unread_count(db.session, other.id) == 1
    assert [n.id for n in list_notifications(db.session, me.id, unread_only=True)] == [second.id]
    assert mark_read(db.session, me.id) == 1
    db.session.commit()
    assert unread_count(db.session, me.id) == 0
    assert mark_read(db.session, me.id, []) == 0


def test_inbox_page_lists_newest_first_with_links(client, db, login_as):
    agent = login_as("agent")
    add(db, agent, "Older one", body="Body of the older one", cif="CIF1", link="/cases/CIF1")
    newer = add(db, agent, "Newer one", kind="payment_received")
    newer.created_at = clock.now() + timedelta(seconds=1)
    db.session.commit()
    response = client.get("/notifications/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.index("Newer one") < html.index("Older one")
    assert "Body of the older one" in html and "Payment received" in html
    assert html.count('data-testid="notification"') == 2
    assert "Mark all as read" in html


def test_empty_inbox_says_so(client, db, login_as):
    login_as("supervisor")
    html = client.get("/notifications/").get_data(as_text=True)
    assert "No notifications yet" in html
    assert "You are all caught up" in client.get("/notifications/?show=unread").get_data(
        as_text=True)


def test_htmx_mark_read_returns_the_row_and_the_counter_out_of_band(client, db, login_as,
                                                                     csrf_token):
    agent = login_as("agent")
    note = add(db, agent)
    add(db, agent, "still unread")
    token = csrf_token("/notifications/")
    response = client.post(f"/notifications/{note.id}/read",
                           headers={"HX-Request": "true", "X-CSRFToken": token})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'id="notification-{note.id}"' in html and "Mark read" not in html
    assert re.search(r'id="bell-count"[^>]*hx-swap-oob="true"', html)
    assert re.search(r'data-testid="bell-count"[^>]*>1</span>', html.replace("\n", " "))
    db.session.expire_all()
    assert db.session.get(Notification, note.id).read_at is not None


def test_mark_read_without_csrf_is_refused_and_others_notifications_are_404(client, db,
                                                                            login_as, make_user,
                                                                            csrf_token):
    agent = login_as("agent")
    mine = add(db, agent)
    theirs = add(db, make_user())
    assert client.post(f"/notifications/{mine.id}/read").status_code == 400
    token = csrf_token("/notifications/")
    assert client.post(f"/notifications/{theirs.id}/read",
                       headers={"X-CSRFToken": token}).status_code == 404
    db.session.expire_all()
    assert db.session.get(Notification, theirs.id).read_at is None


def test_mark_all_read_and_the_counter_partial(client, db, login_as, csrf_token):
    agent = login_as("agent")
    for i in range(3):
        add(db, agent, f"note {i}")
    counter = client.get("/notifications/unread-count", headers={"HX-Request": "true"})
    assert counter.status_code == 200
    assert re.search(r">3</span>", counter.get_data(as_text=True))
    assert 'hx-trigger="every 30s"' in counter.get_data(as_text=True)
    token = csrf_token("/notifications/")
    response = client.post("/notifications/read-all", data={"csrf_token": token})
    assert response.status_code == 302
    html = client.get("/notifications/unread-count").get_data(as_text=True)
    assert "is-zero" in html and ">0</span>" in html


def test_open_marks_read_and_follows_only_local_links(client, db, login_as):
    agent = login_as("agent")
    local = add(db, agent, link="/cases/CIF9")
    evil = add(db, agent, link="https://evil.example/")
    assert client.get(f"/notifications/{local.id}/open").headers["Location"] == "/cases/CIF9"
    assert client.get(f"/notifications/{evil.id}/open").headers["Location"] == "/notifications/"
    db.session.expire_all()
    assert db.session.get(Notification, local.id).read_at is not None


def test_every_page_has_the_bell_polling_the_counter(client, db, login_as):
    login_as("ops")
    html = client.get("/").get_data(as_text=True)
    assert 'data-testid="bell"' in html
    assert re.search(r'hx-get="/notifications/unread-count" hx-trigger="load, every 30s"', html)


def test_the_inbox_needs_a_login(client):
    response = client.get("/notifications/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_a_notification_is_shown_in_the_readers_language_and_old_rows_as_written(client, db,
                                                                                 login_as):
    """Words stored as messages (portal/notifications/messages.py) are rendered for whoever
    reads them; the English is stored too, and a row written before messages shows it."""
    from portal.notifications.messages import N_, day, listing, message, money

    agent = login_as("agent")
    note = add(db, agent, message(N_("Promise broken: %(name)s"), name="Lê Văn Hùng"),
               body=message(N_("%(promised)s promised for %(day)s; %(paid)s paid. The case is "
                               "back at the top of your queue."),
                            promised=money("2000000"), day=day("2026-11-24"),
                            paid=money("0")))
    add(db, agent, "Customer data changed: Lê Văn Hùng", kind="customer_changed",
        body=message(N_("%(source)s updated the %(fields)s."), source=message(N_("The bank")),
                     fields=listing(message(N_("phones")), message(N_("addresses")))))
    add(db, agent, "Written before messages", body="An old English body", kind="info")
    assert note.title == "Promise broken: Lê Văn Hùng"
    assert note.body == ("2,000,000\u00a0₫ promised for 24/11/2026; 0\u00a0₫ paid. The case is "
                         "back at the top of your queue.")
    assert note.message["title"] == {"id": "Promise broken: %(name)s",
                                     "params": {"name": "Lê Văn Hùng"}}

    english = client.get("/notifications/").get_data(as_text=True)
    assert "Promise broken: Lê Văn Hùng" in english
    assert "The bank updated the phones, addresses." in english

    agent.language = "vi"
    db.session.commit()
    vietnamese = client.get("/notifications/").get_data(as_text=True)
    assert "Vi phạm cam kết: Lê Văn Hùng" in vietnamese
    assert "2.000.000\u00a0₫" in vietnamese and "24/11/2026" in vietnamese
    assert "Ngân hàng đã cập nhật số điện thoại, địa chỉ." in vietnamese
    assert "Written before messages" in vietnamese and "An old English body" in vietnamese
