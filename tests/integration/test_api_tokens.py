"""API tokens: created by an admin (page and CLI), shown once, stored hashed, scoped, revocable,
expiring; the JSON API answers 401/403 with a JSON error body."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.models import ApiToken, AuditLog
from portal.models.base import utcnow
from portal.permissions import tokens as api_tokens
from tests.factories import DEFAULT_PASSWORD


@pytest.fixture
def make_token(db, make_user):
    def make(scopes=("api.profile",), user="default", **kwargs):
        if user == "default":
            user = make_user(role="field_agent")
        token, raw = api_tokens.create_token(db.session, name=kwargs.pop("name", "Test phone"),
                                             scopes=list(scopes), user=user,
                                             created_by="test", **kwargs)
        db.session.commit()
        return token, raw

    return make


def bearer(raw):
    return {"Authorization": f"Bearer {raw}"}


def audit_actions(db):
    return [(a.action, a.entity_type) for a in
            db.session.scalars(select(AuditLog).order_by(AuditLog.id))]


def test_no_token_is_401_json(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.is_json
    assert response.get_json()["error"]["code"] == "authentication_required"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_malformed_authorization_is_401_json(client):
    response = client.get("/api/v1/me", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_authorization"


def test_unknown_token_is_401_json(client):
    response = client.get("/api/v1/me", headers=bearer("crm_not-a-real-token"))
    assert response.status_code == 401
    assert response.get_json() == {
        "error": {"code": "invalid_token", "message": "The API token is not valid."}
    }


def test_valid_token_reaches_the_api_and_records_last_use(client, db, make_token):
    token, raw = make_token(scopes=["api.profile", "api.locations"])
    assert token.last_used_at is None
    response = client.get("/api/v1/me", headers=bearer(raw))
    assert response.status_code == 200
    body = response.get_json()
    assert body["authenticated_by"] == "token"
    assert body["user"]["id"] == token.user_id and body["user"]["role"] == "field_agent"
    assert body["token"] == {"id": token.id, "name": "Test phone"}
    assert body["scopes"] == ["api.locations", "api.profile"]
    db.session.expire_all()
    assert db.session.get(ApiToken, token.id).last_used_at is not None


def test_token_is_stored_only_as_sha256_with_a_short_prefix(db, make_token):
    token, raw = make_token()
    assert raw.startswith("crm_") and len(raw) > 40
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert token.prefix == raw[:12]
    assert raw not in repr(db.session.execute(select(ApiToken.__table__)).all())


def test_revoked_token_is_401_json_naming_revocation(client, db, make_token):
    token, raw = make_token()
    api_tokens.revoke_token(db.session, token, revoked_by="test")
    db.session.commit()
    response = client.get("/api/v1/me", headers=bearer(raw))
    assert response.status_code == 401
    error = response.get_json()["error"]
    assert error["code"] == "token_revoked"
    assert "was revoked on" in error["message"] and token.prefix in error["message"]


def test_expired_token_is_401_json_naming_expiry(client, db, make_token):
    token, raw = make_token(expires_at=utcnow() + timedelta(minutes=5))
    token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = client.get("/api/v1/me", headers=bearer(raw))
    assert response.status_code == 401
    error = response.get_json()["error"]
    assert error["code"] == "token_expired" and "expired on" in error["message"]


def test_token_without_the_scope_is_403_json(client, make_token):
    _, raw = make_token(scopes=["api.locations"])
    response = client.get("/api/v1/me", headers=bearer(raw))
    assert response.status_code == 403
    assert response.get_json() == {"error": {
        "code": "insufficient_scope", "message": "This API token lacks the scope 'api.profile'."
    }}


def test_token_of_deactivated_user_is_401(client, db, make_token):
    token, raw = make_token()
    token.user.active = False
    db.session.commit()
    response = client.get("/api/v1/me", headers=bearer(raw))
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "user_inactive"


def test_role_change_narrows_existing_tokens(client, db, make_token):
    token, raw = make_token(scopes=["api.profile", "api.locations"])
    token.user.role = "ops"  # ops has api.profile but not api.locations
    db.session.commit()
    body = client.get("/api/v1/me", headers=bearer(raw)).get_json()
    assert body["scopes"] == ["api.profile"]


def test_system_token_without_user(client, make_token):
    _, raw = make_token(scopes=["api.profile"], user=None, name="Call centre")
    body = client.get("/api/v1/me", headers=bearer(raw)).get_json()
    assert body["user"] is None and body["authenticated_by"] == "token"


def test_session_user_with_permission_may_call_the_api(client, login_as):
    user = login_as("agent")
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.get_json()["authenticated_by"] == "session"
    assert response.get_json()["user"]["username"] == user.username


def test_token_scopes_are_validated(db, make_user):
    agent = make_user(role="agent")
    with pytest.raises(api_tokens.TokenError, match="Unknown scope"):
        api_tokens.create_token(db.session, name="x", scopes=["cases.view"], user=None,
                                created_by="test")
    with pytest.raises(api_tokens.TokenError, match="may not hold: api.locations"):
        api_tokens.create_token(db.session, name="x", scopes=["api.locations"], user=agent,
                                created_by="test")
    with pytest.raises(api_tokens.TokenError, match="at least one scope"):
        api_tokens.create_token(db.session, name="x", scopes=[], user=None, created_by="test")


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


# --- admin page -----------------------------------------------------------------------------


def test_admin_creates_token_shown_once_and_audited(client, db, login_as, csrf_token,
                                                    make_user):
    admin = login_as("admin")
    phone_user = make_user(role="field_agent", full_name="Tran Van An")
    page = client.get("/admin/tokens")
    assert page.status_code == 200
    assert "Tran Van An" in page.get_data(as_text=True)
    response = client.post("/admin/tokens", data={
        "csrf_token": csrf_token("/admin/tokens"), "name": "Phone of An",
        "user_id": str(phone_user.id), "scopes": ["api.profile", "api.locations"],
        "expires_in_days": "90",
    })
    assert response.status_code == 201
    html = response.get_data(as_text=True)
    raw = re.search(r'id="new-token-value">(crm_[^<]+)<', html).group(1)
    assert "it will not be shown again" in html
    token = db.session.scalar(select(ApiToken))
    assert token.token_hash == api_tokens.hash_token(raw)
    assert token.created_by_id == admin.id and token.user_id == phone_user.id
    assert token.expires_at is not None
    assert raw not in client.get("/admin/tokens").get_data(as_text=True)
    assert client.get("/api/v1/me", headers=bearer(raw)).status_code == 200
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "api_token.create"))
    assert audit.actor_id == admin.id and audit.entity_id == str(token.id)
    assert audit.after["scopes"] == ["api.locations", "api.profile"]
    assert raw not in str(audit.after) and token.token_hash not in str(audit.after)


def test_admin_token_form_errors_are_shown(client, login_as, csrf_token, db):
    login_as("admin")
    response = client.post("/admin/tokens", data={"csrf_token": csrf_token("/admin/tokens"),
                                                  "name": "", "user_id": ""})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Give the token a name." in html and "Choose at least one scope." in html
    assert db.session.scalar(select(ApiToken)) is None


def test_admin_token_for_user_beyond_role_is_refused(client, login_as, csrf_token, make_user,
                                                     db):
    login_as("admin")
    agent = make_user(role="agent")
    response = client.post("/admin/tokens", data={
        "csrf_token": csrf_token("/admin/tokens"), "name": "x", "user_id": str(agent.id),
        "scopes": ["api.locations"]})
    assert response.status_code == 422
    assert "may not hold: api.locations" in response.get_data(as_text=True)


def test_admin_revokes_token_with_htmx_and_it_stops_working(client, db, login_as, csrf_token,
                                                            make_token):
    admin = login_as("admin")
    token, raw = make_token()
    response = client.post(f"/admin/tokens/{token.id}/revoke", headers={
        "HX-Request": "true", "X-CSRFToken": csrf_token("/admin/tokens")})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith(f'<tr id="token-{token.id}"')
    assert "Revoked" in html
    assert client.get("/api/v1/me", headers=bearer(raw)).status_code == 401
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "api_token.revoke"))
    assert audit.actor_id == admin.id
    assert audit.before["revoked_at"] is None and audit.after["revoked_at"] is not None


def test_admin_revoke_without_htmx_redirects_with_flash(client, login_as, csrf_token,
                                                        make_token):
    login_as("admin")
    token, _ = make_token()
    response = client.post(f"/admin/tokens/{token.id}/revoke",
                           data={"csrf_token": csrf_token("/admin/tokens")},
                           follow_redirects=True)
    assert response.status_code == 200
    assert f"({token.prefix}…) revoked." in response.get_data(as_text=True)


def test_revoke_unknown_token_is_404(client, login_as, csrf_token):
    login_as("admin")
    response = client.post("/admin/tokens/999/revoke",
                           data={"csrf_token": csrf_token("/admin/tokens")})
    assert response.status_code == 404


# --- CLI ------------------------------------------------------------------------------------


def test_cli_token_lifecycle(app, db, make_user):
    user = make_user(role="field_agent")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["tokens", "create", "--user", user.username, "--name",
                                 "Phone", "--scopes", "api.profile,api.visits",
                                 "--expires-days", "30"])
    assert result.exit_code == 0, result.output
    raw = result.output.strip().splitlines()[-1]
    assert raw.startswith("crm_")
    db.session.expire_all()
    token = db.session.scalar(select(ApiToken))
    assert token.token_hash == api_tokens.hash_token(raw) and token.scopes == [
        "api.profile", "api.visits"]

    listing = runner.invoke(args=["tokens", "list"])
    assert listing.exit_code == 0 and token.prefix in listing.output and raw not in listing.output

    revoked = runner.invoke(args=["tokens", "revoke", token.prefix])
    assert revoked.exit_code == 0, revoked.output
    again = runner.invoke(args=["tokens", "revoke", str(token.id)])
    assert again.exit_code != 0 and "already revoked" in again.output
    db.session.expire_all()
    assert [a for a, _ in audit_actions(db)] == ["api_token.create", "api_token.revoke"]

    bad = runner.invoke(args=["tokens", "create", "--name", "x", "--scopes", "admin.users"])
    assert bad.exit_code != 0 and "Unknown scope" in bad.output


def test_cli_users_create_set_password_and_list(app, db, client, csrf_token, redis_client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "--username", "Lan.Pham", "--full-name",
                                 "Pham Thi Lan", "--role", "supervisor",
                                 "--password", DEFAULT_PASSWORD])
    assert result.exit_code == 0, result.output
    short = runner.invoke(args=["users", "set-password", "lan.pham", "--password", "short"])
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    redis_client.set("crm:login:locked:lan.pham", 1, ex=600)
    changed = runner.invoke(args=["users", "set-password", "lan.pham",
                                  "--password", "N3w-password!"])
    assert changed.exit_code == 0, changed.output
    assert redis_client.get("crm:login:locked:lan.pham") is None
    listing = runner.invoke(args=["users", "list"])
    assert "lan.pham" in listing.output and "supervisor" in listing.output
    duplicate = runner.invoke(args=["users", "create", "--username", "lan.pham", "--full-name",
                                    "X", "--role", "agent", "--password", DEFAULT_PASSWORD])
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output
    response = client.post("/auth/login", data={"username": "lan.pham",
                                                "password": "N3w-password!",
                                                "csrf_token": csrf_token()})
    assert response.status_code == 302
