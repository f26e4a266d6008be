"""The role → permission map (portal.permissions) and its decorators' declarations."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from portal.models.enums import ROLES
from portal.permissions import roles
from portal.permissions.decorators import (
    api_permission_required,
    permission_required,
    public,
    route_protection,
)
from portal.permissions.roles import (
    API_SCOPES,
    PERMISSIONS,
    ROLE_PERMISSIONS,
    has_permission,
    roles_with,
)


def user(role, active=True, authenticated=True):
    return SimpleNamespace(role=role, is_active=active, is_authenticated=authenticated)


def test_every_role_of_the_data_model_has_permissions_and_no_others():
    assert set(ROLE_PERMISSIONS) == set(ROLES)


def test_role_permissions_are_all_declared():
    for role, perms in ROLE_PERMISSIONS.items():
        assert perms <= set(PERMISSIONS), (role, perms - set(PERMISSIONS))


def test_every_permission_is_granted_to_some_role():
    granted = set().union(*ROLE_PERMISSIONS.values())
    assert set(PERMISSIONS) - granted == set()


def test_every_role_may_use_the_portal_and_read_its_profile():
    for role in ROLES:
        assert has_permission(user(role), "portal.access")
        assert has_permission(user(role), "api.profile")


@pytest.mark.parametrize(("role", "allowed", "refused"), [
    ("agent", {"cases.view", "cases.work", "customers.view_pii"},
     {"supervisor.assign", "ops.actions", "admin.tokens", "field.track", "field.visits"}),
    ("field_agent", {"field.visits", "cases.work", "api.locations", "api.visits"},
     {"field.track", "supervisor.board", "ops.integrations", "admin.users"}),
    ("supervisor", {"supervisor.board", "supervisor.assign", "supervisor.kpi", "field.track"},
     {"cases.work", "ops.actions", "admin.tokens", "api.locations"}),
    ("ops", {"ops.integrations", "ops.actions", "api.integrations"},
     {"cases.view", "customers.view_pii", "admin.tokens", "supervisor.assign"}),
    ("admin", {"admin.users", "admin.tokens", "ops.integrations"},
     {"customers.view_pii", "cases.work", "ops.actions", "supervisor.assign"}),
])
def test_role_matrix(role, allowed, refused):
    for perm in allowed:
        assert has_permission(user(role), perm), perm
    for perm in refused:
        assert not has_permission(user(role), perm), perm


def test_pii_is_masked_for_roles_that_do_not_need_it():
    assert set(roles_with("customers.view_pii")) == {"agent", "field_agent", "supervisor"}


def test_anonymous_inactive_and_unknown_role_have_nothing():
    for perm in PERMISSIONS:
        assert not has_permission(None, perm)
        assert not has_permission(user("admin", authenticated=False), perm)
        assert not has_permission(user("admin", active=False), perm)
        assert not has_permission(user("superuser"), perm)


def test_unknown_permission_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown permission"):
        has_permission(user("admin"), "admin.everything")
    with pytest.raises(ValueError, match="unknown permission"):
        permission_required("cases.veiw")
    with pytest.raises(ValueError, match="api"):
        api_permission_required("cases.view")


def test_api_scopes_are_the_api_permissions():
    assert API_SCOPES and all(s.startswith("api.") for s in API_SCOPES)
    assert set(API_SCOPES) == {p for p in PERMISSIONS if p.startswith("api.")}


def test_decorators_record_what_they_enforce():
    @permission_required("supervisor.kpi")
    def page():
        return "ok"

    @api_permission_required("api.locations")
    def endpoint():
        return "ok"

    @public
    def open_page():
        return "ok"

    def forgotten():
        return "ok"

    assert page._required_permission == "supervisor.kpi"
    assert page.__name__ == "page"
    assert route_protection(page) == ("page", "supervisor.kpi")
    assert route_protection(endpoint) == ("api", "api.locations")
    assert route_protection(open_page) == ("public", None)
    assert route_protection(forgotten) == ("none", None)


def test_roles_with_lists_exactly_the_granting_roles():
    assert roles_with("admin.tokens") == ("admin",)
    assert set(roles_with("cases.view")) == {"agent", "field_agent", "supervisor"}
    assert roles.permissions_for_role("nobody") == frozenset()
