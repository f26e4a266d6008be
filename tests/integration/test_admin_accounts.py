"""Administration in the browser (issue 22): users (create, edit, deactivate, reactivate, unlock,
reset the password), teams, the password policy and the forced change after a reset. Every
change is audited with the request's correlation id; every refusal is precise (the message next
to its field, or 409) and writes nothing."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from portal.auth import login_protection
from portal.models import AuditLog, PasswordHistory, Team, User
from tests.factories import DEFAULT_PASSWORD

TEMPORARY = re.compile(r'data-testid="temporary-password">([^<]+)<')


def counts(db) -> tuple[int, int, int, int]:
    return (db.session.scalar(select(func.count(User.id))),
            db.session.scalar(select(func.count(AuditLog.id))),
            db.session.scalar(select(func.count(PasswordHistory.id))),
            db.session.scalar(select(func.count(Team.id))))


def audit_rows(db, action: str) -> list[AuditLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditLog).where(AuditLog.action == action)
                                   .order_by(AuditLog.id)))


def field_error(html: str, name: str) -> str:
    match = re.search(rf'data-testid="error-{name}">([^<]*)<', html)
    assert match, f"no error next to {name}"
    return match.group(1)


@pytest.fixture
def admin(login_as):
    return login_as("admin")


@pytest.fixture
def post(client, csrf_token):
    def do(url: str, data: dict | None = None, **headers):
        token = csrf_token("/auth/password")
        return client.post(url, data={"csrf_token": token, **(data or {})},
                           headers=headers)

    return do


NEW_USER = {"username": "lan.tran", "full_name": "Trần Thị Lan", "role": "agent",
            "email": "lan.tran@bank.vn", "team_id": "", "cti_agent_id": "CTI-0420",
            "phone_extension": "420", "region": "Hà Nội"}


# --- users -------------------------------------------------------------------------------------


def test_an_admin_creates_a_user_who_gets_a_temporary_password_shown_once(db, admin, post,
                                                                        make_team):
    team = make_team(name="Đội Hà Nội 1")
    response = post("/admin/users/new", {**NEW_USER, "team_id": str(team.id)},
                    **{"X-Request-ID": "req-create-user"})
    assert response.status_code == 201
    html = response.get_data(as_text=True)
    temporary = TEMPORARY.search(html).group(1)
    user = db.session.scalar(select(User).where(User.username == "lan.tran"))
    assert (user.full_name, user.role, user.team_id, user.cti_agent_id, user.phone_extension,
            user.region, user.active) == ("Trần Thị Lan", "agent", team.id, "CTI-0420", "420",
                                          "Hà Nội", True)
    assert user.must_change_password is True
    assert check_password_hash(user.password_hash, temporary) and len(temporary) >= 16
    created = audit_rows(db, "user.create")[0]
    assert created.actor_id == admin.id and created.entity_id == str(user.id)
    assert created.after["username"] == "lan.tran" and created.after["team"] == "Đội Hà Nội 1"
    assert created.correlation_id == "req-create-user"
    secret = audit_rows(db, "user.temporary_password")[0]
    assert secret.correlation_id == "req-create-user"
    assert temporary not in str(secret.after) and user.password_hash not in str(secret.after)


def test_the_temporary_password_is_not_shown_again(db, admin, post, client):
    html = post("/admin/users/new", NEW_USER).get_data(as_text=True)
    temporary = TEMPORARY.search(html).group(1)
    user = db.session.scalar(select(User).where(User.username == "lan.tran"))
    again = client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    assert temporary not in again and "temporary-password" not in again


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"username": "ADMIN1"}, "username", "already taken"),  # taken, in any case
    ({"username": "x"}, "username", "3 to 64 characters"),
    ({"username": "lan tran"}, "username", "3 to 64 characters"),
    ({"full_name": ""}, "full_name", "full name"),
    ({"role": "root"}, "role", "Not a valid choice"),
    ({"email": "not-an-address"}, "email", "e-mail address"),
    ({"team_id": "987654"}, "team_id", "Not a valid choice"),
])
def test_a_new_user_is_refused_next_to_the_field_and_nothing_is_written(
        db, admin, post, make_user, changes, field, words):
    make_user(role="agent", username="admin1")
    before = counts(db)
    response = post("/admin/users/new", {**NEW_USER, **changes})
    assert response.status_code == 422
    assert words.lower() in field_error(response.get_data(as_text=True), field).lower()
    assert counts(db) == before


def test_a_call_centre_id_taken_by_another_user_is_refused(db, admin, post, make_user):
    make_user(role="agent", cti_agent_id="CTI-0420")
    before = counts(db)
    response = post("/admin/users/new", NEW_USER)
    assert response.status_code == 422
    assert "call-centre id" in field_error(response.get_data(as_text=True), "cti_agent_id")
    assert counts(db) == before


def test_an_admin_edits_role_team_and_call_centre_id_with_before_and_after(
        db, admin, post, make_user, make_team):
    team = make_team(name="Đội Đà Nẵng")
    user = make_user(role="agent", full_name="Lê Văn Bình")
    response = post(f"/admin/users/{user.id}", {
        "full_name": "Lê Văn Bình", "role": "field_agent", "team_id": str(team.id),
        "cti_agent_id": "CTI-77", "phone_extension": "", "email": "", "region": ""},
        **{"X-Request-ID": "req-edit"})
    assert response.status_code == 302
    db.session.expire_all()
    assert (user.role, user.team_id, user.cti_agent_id) == ("field_agent", team.id, "CTI-77")
    row = audit_rows(db, "user.update")[0]
    assert row.before == {"role": "agent", "team_id": None, "team": None,
                          "cti_agent_id": None}
    assert row.after == {"role": "field_agent", "team_id": team.id, "team": "Đội Đà Nẵng",
                         "cti_agent_id": "CTI-77"}
    assert row.correlation_id == "req-edit"


def test_an_admin_cannot_change_their_own_role(db, admin, post):
    before = counts(db)
    response = post(f"/admin/users/{admin.id}", {"full_name": admin.full_name,
                                                  "role": "agent", "team_id": ""})
    assert response.status_code == 422
    assert "own role" in field_error(response.get_data(as_text=True), "role")
    db.session.expire_all()
    assert admin.role == "admin" and counts(db) == before


def test_deactivate_and_reactivate_are_audited_and_a_deactivated_user_cannot_sign_in(
        db, admin, post, make_user, app):
    user = make_user(role="agent")
    response = post(f"/admin/users/{user.id}/deactivate", **{"X-Request-ID": "req-off"})
    assert response.status_code == 302
    db.session.expire_all()
    assert user.active is False
    assert audit_rows(db, "user.deactivate")[0].correlation_id == "req-off"
    other = app.test_client()
    token = other.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', token).group(1)
    refused = other.post("/auth/login", data={"csrf_token": token, "username": user.username,
                                              "password": DEFAULT_PASSWORD})
    assert refused.status_code == 401 and "deactivated" in refused.get_data(as_text=True)
    assert post(f"/admin/users/{user.id}/reactivate").status_code == 302
    db.session.expire_all()
    assert user.active is True
    assert audit_rows(db, "user.reactivate")[0].after["active"] is True


def test_an_admin_cannot_deactivate_themselves(db, admin, post):
    before = counts(db)
    response = post(f"/admin/users/{admin.id}/deactivate")
    assert response.status_code == 409
    assert "own account" in response.get_data(as_text=True)
    db.session.expire_all()
    assert admin.active is True and counts(db) == before


def test_an_admin_unlocks_a_locked_out_user(db, admin, post, make_user, app):
    user = make_user(role="agent")
    with app.test_request_context():
        protection = login_protection.from_app(app)
    for _ in range(protection.max_failures):
        protection.record_failure(user.username)
    assert protection.current_lock(user.username) is not None
    response = post(f"/admin/users/{user.id}/unlock", **{"X-Request-ID": "req-unlock"})
    assert response.status_code == 302
    assert protection.current_lock(user.username) is None
    row = audit_rows(db, "user.unlock")[0]
    assert row.correlation_id == "req-unlock" and row.before["locked_seconds_left"] > 0
    # unlocking an account that is not locked is refused and writes nothing
    before = counts(db)
    assert post(f"/admin/users/{user.id}/unlock").status_code == 409
    assert counts(db) == before


def test_a_reset_shows_a_temporary_password_the_user_must_change(db, admin, post, make_user):
    user = make_user(role="agent")
    response = post(f"/admin/users/{user.id}/reset-password", **{"X-Request-ID": "req-reset"})
    assert response.status_code == 200
    temporary = TEMPORARY.search(response.get_data(as_text=True)).group(1)
    db.session.expire_all()
    assert user.must_change_password is True
    assert check_password_hash(user.password_hash, temporary)
    assert not check_password_hash(user.password_hash, DEFAULT_PASSWORD)
    row = audit_rows(db, "user.password_reset")[0]
    assert row.correlation_id == "req-reset" and row.after["must_change_password"] is True


def test_an_admin_cannot_reset_their_own_password(db, admin, post):
    before = counts(db)
    assert post(f"/admin/users/{admin.id}/reset-password").status_code == 409
    assert counts(db) == before


def test_a_missing_user_is_404(db, admin, post, client):
    assert client.get("/admin/users/987654").status_code == 404
    assert post("/admin/users/987654/deactivate").status_code == 404


# --- the forced change after a reset and the user's own change ----------------------------------


def sign_in(app, username: str, password: str):
    client = app.test_client()
    html = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
    response = client.post("/auth/login", data={"csrf_token": token, "username": username,
                                                "password": password})
    return client, response, token


def test_after_a_reset_every_page_leads_to_the_change_password_page(db, app, make_user):
    from portal.auth import passwords

    user = make_user(role="supervisor")
    with app.test_request_context():
        policy = passwords.policy_from_app(app)
        passwords.set_password(db.session, user, "Tam-thoi-2026-xyz", policy, actor="test",
                               temporary=True)
        db.session.commit()
    client, response, token = sign_in(app, user.username, "Tam-thoi-2026-xyz")
    assert response.status_code == 302 and response.headers["Location"].startswith(
        "/auth/password")
    for path in ("/", "/supervisor/board", "/notifications/", "/admin/users"):
        moved = client.get(path)
        assert moved.status_code == 302 and moved.headers["Location"] == "/auth/password", path
    htmx = client.get("/", headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"] == "/auth/password"
    api = client.get("/api/v1/me")
    assert api.status_code == 403 and api.get_json()["error"]["code"] == \
        "password_change_required"
    page = client.get("/auth/password")
    assert page.status_code == 200 and 'data-testid="must-change"' in page.get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True))[1]
    changed = client.post("/auth/password", data={
        "csrf_token": token, "current_password": "Tam-thoi-2026-xyz",
        "new_password": "Hoa-sen-no-buoi-sang", "confirm_password": "Hoa-sen-no-buoi-sang"})
    assert changed.status_code == 302
    db.session.expire_all()
    assert user.must_change_password is False
    assert client.get("/").status_code == 200
    assert audit_rows(db, "user.password_change")[0].actor_id == user.id


@pytest.fixture
def changing(db, client, login, make_user, csrf_token):
    """A signed-in user on the change-password page: ``change(new)`` posts a change."""
    user = login(make_user(role="agent", username="binh.le"))

    def change(new: str, current: str = DEFAULT_PASSWORD, again: str | None = None):
        token = csrf_token("/auth/password")
        return client.post("/auth/password", data={
            "csrf_token": token, "current_password": current, "new_password": new,
            "confirm_password": new if again is None else again})

    change.user = user
    return change


@pytest.mark.parametrize(("new", "field", "words"), [
    ("Ngan9chu", "new_password", "at least 10 characters"),  # too short
    ("password123", "new_password", "common passwords"),
    ("matkhau123", "new_password", "common passwords"),  # a Vietnamese one
    ("qwertyuiop", "new_password", "common passwords"),
    ("BINH.LE", "new_password", "at least"),
    (DEFAULT_PASSWORD, "new_password", "used recently"),  # the current one
])
def test_a_weak_password_is_refused_next_to_the_field_and_nothing_is_written(
        db, changing, new, field, words):
    before = counts(db), changing.user.password_hash
    response = changing(new)
    assert response.status_code == 422
    assert words in field_error(response.get_data(as_text=True), field)
    db.session.expire_all()
    assert (counts(db), changing.user.password_hash) == before


def test_the_username_is_refused_as_a_password(db, changing, app):
    app.config["PASSWORD_MIN_LENGTH"] = 5
    try:
        response = changing("binh.le")
    finally:
        app.config["PASSWORD_MIN_LENGTH"] = 10
    assert "may not be the username" in field_error(response.get_data(as_text=True),
                                                    "new_password")


def test_a_wrong_current_password_or_a_mismatch_is_refused(db, changing):
    before = counts(db)
    wrong = changing("Song-Hong-chay-mai", current="not-my-password")
    assert wrong.status_code == 422
    assert "not right" in field_error(wrong.get_data(as_text=True), "current_password")
    mismatch = changing("Song-Hong-chay-mai", again="Song-Hong-chay-maj")
    assert mismatch.status_code == 422
    assert "not the same" in field_error(mismatch.get_data(as_text=True), "confirm_password")
    assert counts(db) == before


def test_a_password_among_the_last_n_is_refused_and_older_ones_come_back(db, changing, app):
    app.config["PASSWORD_REUSE_DEPTH"] = 3
    try:
        first, second, third = "Mua-xuan-tren-pho", "Mua-ha-ben-song", "Mua-thu-Ha-Noi-1"
        current = DEFAULT_PASSWORD
        for new in (first, second, third):
            assert changing(new, current=current).status_code == 302
            current = new
        refused = changing(first, current=current)  # 3rd from last: still remembered
        assert refused.status_code == 422
        assert "last 3 passwords" in field_error(refused.get_data(as_text=True),
                                                 "new_password")
        assert changing("Mua-dong-lanh-gia", current=current).status_code == 302
        # four changes later the first is out of the last three: it may be chosen again
        assert changing(first, current="Mua-dong-lanh-gia").status_code == 302
        user_id = changing.user.id
        kept = db.session.scalar(select(func.count(PasswordHistory.id))
                                 .where(PasswordHistory.user_id == user_id))
        assert kept == 3
    finally:
        app.config["PASSWORD_REUSE_DEPTH"] = 5


def test_the_minimum_length_is_configurable(db, changing, app):
    app.config["PASSWORD_MIN_LENGTH"] = 20
    try:
        response = changing("Chi-muoi-chin-ky-tu")
    finally:
        app.config["PASSWORD_MIN_LENGTH"] = 10
    assert "at least 20 characters" in field_error(response.get_data(as_text=True),
                                                   "new_password")


def test_the_common_list_says_where_it_comes_from():
    from portal.auth.passwords import COMMON_LIST, load_common

    header = COMMON_LIST.read_text(encoding="utf-8").splitlines()[:3]
    assert any(line.startswith("# Source:") for line in header)
    common = load_common(str(COMMON_LIST))
    assert len(common) > 10_000 and {"123456", "password", "matkhau123"} <= common


# --- teams -------------------------------------------------------------------------------------


def test_an_admin_creates_a_team_with_a_supervisor_and_members(db, admin, post, make_user):
    sup = make_user(role="supervisor", username="sup.hoa")
    a1, a2 = make_user(role="agent"), make_user(role="field_agent")
    response = post("/admin/teams/new", {"name": "Đội Cần Thơ", "region": "Miền Tây",
                                         "supervisor_id": str(sup.id),
                                         "member_ids": [str(a1.id), str(a2.id)]},
                    **{"X-Request-ID": "req-team"})
    assert response.status_code == 302
    team = db.session.scalar(select(Team).where(Team.name == "Đội Cần Thơ"))
    assert team.supervisor_id == sup.id and {u.id for u in team.members} == {a1.id, a2.id}
    row = audit_rows(db, "team.create")[0]
    assert row.after["supervisor"] == "sup.hoa" and row.correlation_id == "req-team"
    assert row.after["members"] == sorted([a1.username, a2.username])


def test_an_admin_renames_a_team_and_changes_its_members(db, admin, post, make_user,
                                                         make_team):
    team = make_team(name="Đội 1")
    a1, a2 = make_user(role="agent", team_id=team.id), make_user(role="agent")
    response = post(f"/admin/teams/{team.id}", {"name": "Đội Sài Gòn", "region": "",
                                                "supervisor_id": "",
                                                "member_ids": [str(a2.id)]})
    assert response.status_code == 302
    db.session.expire_all()
    assert team.name == "Đội Sài Gòn" and a1.team_id is None and a2.team_id == team.id
    row = audit_rows(db, "team.update")[0]
    assert row.before == {"name": "Đội 1", "members": [a1.username]}
    assert row.after == {"name": "Đội Sài Gòn", "members": [a2.username]}


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"name": "đội 1"}, "name", "already has this name"),
    ({"name": ""}, "name", "name"),
    ({"supervisor_id": "AGENT"}, "supervisor_id", "Not a valid choice"),
    ({"member_ids": ["987654"]}, "member_ids", "valid choice"),
])
def test_a_team_change_is_refused_and_nothing_is_written(db, admin, post, make_user,
                                                        make_team, data, field, words):
    make_team(name="Đội 1")
    agent = make_user(role="agent")
    if data.get("supervisor_id") == "AGENT":
        data = {**data, "supervisor_id": str(agent.id)}
    before = counts(db)
    response = post("/admin/teams/new", {"name": "Đội mới", "supervisor_id": "", **data})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    if field == "member_ids":
        assert words in html
    else:
        assert words.lower() in field_error(html, field).lower()
    assert counts(db) == before


def test_the_admin_pages_render(db, admin, client, make_user, make_team):
    team = make_team(name="Đội 7")
    user = make_user(role="agent", team_id=team.id)
    for path in ("/admin/users", "/admin/users/new", f"/admin/users/{user.id}",
                 "/admin/teams", "/admin/teams/new", f"/admin/teams/{team.id}",
                 "/admin/audit", "/auth/password"):
        assert client.get(path).status_code == 200, path
