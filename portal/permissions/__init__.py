"""Roles → permissions, in one place, and the decorators that enforce them.

Every route of the portal declares what it needs:

- ``@permission_required("cases.view")`` on HTML pages and HTMX partials: an anonymous visitor
  is sent to the login page (an HTMX request gets an ``HX-Redirect`` header instead of a 302),
  a user whose role lacks the permission gets the 403 page.
- ``@api_permission_required("api.locations")`` on the JSON API: the principal is an API token
  (``Authorization: Bearer <token>``, scoped, revocable, may expire) or a logged-in session user
  whose role grants that permission. Refusals are 401/403 JSON ``{"error": {"code", "message"}}``.
- ``@public`` on the few routes anyone may call (login page, health check, signed webhooks).

Holding a permission is not enough for an object the URL names. Each URL variable that names
a team's object (``<cif>``, ``<int:visit_id>``, ``<int:agent_id>``, ``<call_id>``,
``<int:notification_id>``) has one rule in ``OBJECT_RULES`` below, and both decorators apply it
after the role check: an agent opening another team's case by guessing its CIF gets 404, as for
a CIF that does not exist (the API: 403 JSON ``not_your_case``). The variables that name
objects with no owner (integration names, action codes, runs: only their role reaches them)
are listed in ``UNOWNED_URL_VARIABLES`` with the reason;
tests/integration/test_route_authorization.py fails on a variable in neither. Lists and
searches use the same rules as SQL conditions (``case_scope``, ``cif_scope``, ``team_scope``).

The decorators record what they enforce on the view function (``_required_permission``,
``_api_scope``, ``_public``), so a test can walk ``app.url_map`` and prove that every route is
protected as declared (tests/integration/test_route_protection.py).

Modules: ``roles`` (the permissions of each role), ``scopes`` (what a user may reach: teams, cases,
the objects URLs name), ``tokens`` (API tokens: the principal of an API request) and
``decorators`` (marking and enforcing routes).
"""
