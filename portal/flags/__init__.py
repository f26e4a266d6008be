"""Feature flags: switch a capability on for everyone, for chosen teams first, or off.

- ``registry``: the one list of known flags (name, translated label and description, the
  permissions and blueprints each one gates). A name not in it is a programming error.
- ``operations``: ``flag_on(name, user_or_team)``, the states, and ``set_flag`` (audited with
  before and after). No row in ``feature_flags``: on for everyone, so a new flag changes
  nothing until someone switches it.
- ``web``: the gate — a gated blueprint's pages answer 403 (in the reader's language) to a user
  the flag is off for, and ``can()`` (navigation, templates) hides what they gate.
- ``cli`` (``flask flags list|set``); the page that switches them is the ops area's
  (portal/ops/flag_views.py), above the gate that ``can()`` and every blueprint consult.

Who a flag in mode ``teams`` is on for: agents, field agents and supervisors when their own
team or a team they supervise is chosen; the roles that oversee every team (admin, ops,
auditor) as long as the flag is not off. Jobs: see ``job_enabled``.
"""
