"""Feature flags (issue 24 §4): on for everyone by default; on for chosen teams first hides the
capability from the other teams' users (navigation, the case view's card, the pages answer
403); every change is audited with before and after and shown on the ops page; an unknown flag
is refused by the function, the CLI and the web; the strategies' daily run is skipped (with a
trace) while its flag is off for everyone, and the invariants still hold."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.flags import operations
from portal.flags.registry import FLAGS, UnknownFlag
from portal.models import AuditLog, FeatureFlag, IntegrationRun
from tests.conftest import csrf_token_from


@pytest.fixture
def two_teams(make_team, make_user):
    """Team A and team B, each with a supervisor and an agent."""
    team_a, team_b = make_team(name="Team A"), make_team(name="Team B")
    people = {}
    for key, team in (("a", team_a), ("b", team_b)):
        people[f"sup_{key}"] = make_user("supervisor", team_id=team.id)
        people[f"agent_{key}"] = make_user("agent", team_id=team.id)
        team.supervisor_id = people[f"sup_{key}"].id
    from portal.extensions import db

    db.session.commit()
    return team_a, team_b, people


def test_no_row_means_on_for_everyone(db, two_teams, make_user):
    team_a, team_b, people = two_teams
    assert db.session.scalar(select(FeatureFlag)) is None
    for name in FLAGS:
        assert operations.flag_on(name, people["agent_a"])
        assert operations.flag_on(name, team_b)
        assert operations.flag_on(name, team_b.id)
        assert operations.job_enabled(name)
        assert operations.flag_on(name, make_user("agent"))  # no team at all


def test_on_for_chosen_teams_only(db, two_teams, make_user):
    team_a, team_b, people = two_teams
    operations.set_flag(db.session, "strategies", "teams", [team_a.id], "test")
    db.session.commit()
    assert operations.flag_on("strategies", team_a) and not operations.flag_on("strategies",
                                                                                 team_b)
    assert operations.flag_on("strategies", people["sup_a"])
    assert operations.flag_on("strategies", people["agent_a"])
    assert not operations.flag_on("strategies", people["sup_b"])
    assert not operations.flag_on("strategies", people["agent_b"])
    assert not operations.flag_on("strategies", make_user("agent"))  # in no team
    # the roles that oversee every team see it while it is on for some
    for role in ("admin", "ops", "auditor"):
        assert operations.flag_on("strategies", make_user(role))
    assert operations.job_enabled("strategies")
    # the other flags are untouched
    assert operations.flag_on("messages", people["agent_b"])

    operations.set_flag(db.session, "strategies", "off", None, "test")
    db.session.commit()
    assert not operations.flag_on("strategies", make_user("admin"))
    assert not operations.flag_on("strategies", team_a)
    assert not operations.job_enabled("strategies")


def test_unknown_flag_raises_and_bad_states_are_refused(db, two_teams):
    team_a, _, people = two_teams
    with pytest.raises(UnknownFlag, match="unknown feature flag 'stratgies'"):
        operations.flag_on("stratgies", people["agent_a"])
    with pytest.raises(UnknownFlag):
        operations.set_flag(db.session, "nope", "all", None, "test")
    with pytest.raises(ValueError, match="at least one team"):
        operations.set_flag(db.session, "messages", "teams", [], "test")
    with pytest.raises(ValueError, match="unknown mode"):
        operations.set_flag(db.session, "messages", "some", [team_a.id], "test")
    with pytest.raises(ValueError, match="no team with id"):
        operations.set_flag(db.session, "messages", "teams", [team_a.id + 1000], "test")
    assert db.session.scalar(select(AuditLog)) is None


def test_strategies_off_for_team_b_hides_them_from_b_but_not_a(client, login, db, two_teams):
    team_a, team_b, people = two_teams
    operations.set_flag(db.session, "strategies", "teams", [team_a.id], "test")
    db.session.commit()

    login(people["sup_a"])
    assert client.get("/strategies/").status_code == 200
    home = client.get("/").get_data(as_text=True)
    assert 'href="/strategies/"' in home

    login(people["sup_b"])
    refused = client.get("/strategies/")
    assert refused.status_code == 403
    page = refused.get_data(as_text=True)
    assert "strategies" in page and "feature flag" in page
    assert 'href="/strategies/"' not in client.get("/").get_data(as_text=True)
    # an action is refused as the page is (the run, a POST)
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    assert client.post("/strategies/run", data={"csrf_token": token}).status_code == 403


def test_messages_on_for_team_a_only_hides_the_case_card_from_b_s_agent(
        client, login, db, two_teams, ws_case):
    team_a, team_b, people = two_teams
    case_a, case_b = ws_case(people["agent_a"]), ws_case(people["agent_b"])
    operations.set_flag(db.session, "messages", "teams", [team_a.id], "test")
    db.session.commit()

    login(people["agent_a"])
    view = client.get(f"/cases/{case_a.cif}").get_data(as_text=True)
    assert 'data-testid="send-message-slot"' in view
    assert client.get(f"/messages/cases/{case_a.cif}/card").status_code == 200

    login(people["agent_b"])
    view = client.get(f"/cases/{case_b.cif}")
    assert view.status_code == 200
    assert 'data-testid="send-message-slot"' not in view.get_data(as_text=True)
    assert client.get(f"/messages/cases/{case_b.cif}/card").status_code == 403
    token = csrf_token_from(view.get_data(as_text=True))
    sent = client.post(f"/messages/cases/{case_b.cif}/send",
                       data={"csrf_token": token, "channel": "sms"})
    assert sent.status_code == 403


def test_the_ops_page_switches_a_flag_audited_and_shows_the_last_change(
        client, login_as, db, two_teams):
    team_a, team_b, _ = two_teams
    user = login_as("ops", username="ops.flags")
    page = client.get("/ops/flags")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for name in FLAGS:
        assert f'data-testid="flag-{name}"' in html
    token = csrf_token_from(html)

    # mode "teams" without a team: the form says so, nothing changes
    bad = client.post("/ops/flags/strategies", data={"csrf_token": token,
                                                     "strategies-mode": "teams"})
    assert bad.status_code == 400
    assert "Choose at least one team" in bad.get_data(as_text=True)
    assert db.session.scalar(select(AuditLog)) is None

    done = client.post("/ops/flags/strategies", data={
        "csrf_token": token, "strategies-mode": "teams", "strategies-teams": [str(team_b.id)]})
    assert done.status_code == 303
    row = db.session.scalar(select(AuditLog).where(AuditLog.action == "flags.set"))
    assert (row.entity_type, row.entity_id, row.actor_id) == ("feature_flag", "strategies",
                                                               user.id)
    assert row.before == {"mode": "all", "teams": []}
    assert row.after == {"mode": "teams", "teams": ["Team B"]}
    flag = db.session.get(FeatureFlag, "strategies")
    assert flag.mode == "teams" and flag.updated_by_id == user.id

    html = client.get("/ops/flags").get_data(as_text=True)
    assert "ops.flags" in html and "Team B" in html

    # the same state again: no second audit row
    again = client.post("/ops/flags/strategies", data={
        "csrf_token": token, "strategies-mode": "teams", "strategies-teams": [str(team_b.id)]})
    assert again.status_code == 303
    assert len(db.session.scalars(select(AuditLog)).all()) == 1


def test_an_unknown_flag_is_refused_on_the_web(client, login_as, db):
    login_as("ops")
    token = csrf_token_from(client.get("/ops/flags").get_data(as_text=True))
    refused = client.post("/ops/flags/stratgies", data={"csrf_token": token,
                                                        "stratgies-mode": "off"})
    assert refused.status_code == 404
    page = refused.get_data(as_text=True)
    assert "stratgies" in page and "strategies" in page
    assert db.session.scalar(select(AuditLog)) is None


def test_only_ops_and_admins_may_switch(client, login_as, db):
    for role in ("supervisor", "agent", "auditor"):
        login_as(role)
        token = csrf_token_from(client.get("/", follow_redirects=True).get_data(as_text=True))
        assert client.post("/ops/flags/messages", data={
            "csrf_token": token, "messages-mode": "off"}).status_code == 403
    login_as("admin")
    html = client.get("/ops/flags").get_data(as_text=True)
    assert 'data-testid="flag-form-messages"' in html


def test_the_cli_lists_sets_and_refuses(app, db, two_teams):
    team_a, team_b, _ = two_teams
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["flags", "list"])
    assert listed.exit_code == 0
    assert "strategies   all  (never changed" in listed.output

    result = runner.invoke(args=["flags", "set", "messages", "--teams", "Team A, Team B"])
    assert result.exit_code == 0, result.output
    assert operations.state("messages").team_ids == {team_a.id, team_b.id}
    row = db.session.scalar(select(AuditLog).where(AuditLog.action == "flags.set"))
    assert row.actor_label == "cli" and row.after == {"mode": "teams",
                                                      "teams": ["Team A", "Team B"]}
    listed = runner.invoke(args=["flags", "list"])
    assert "messages     teams: Team A, Team B  (changed" in listed.output
    assert "by cli" in listed.output

    unknown = runner.invoke(args=["flags", "set", "nope", "--all"])
    assert unknown.exit_code != 0
    assert "unknown feature flag 'nope'" in unknown.output
    assert "messages, placements, strategies" in unknown.output
    for args in (["--all", "--off"], [], ["--teams", "Team C"], ["--teams", " , "]):
        refused = runner.invoke(args=["flags", "set", "messages", *args])
        assert refused.exit_code != 0, args
        assert "Error:" in refused.output
    assert runner.invoke(args=["flags", "set", "messages", "--off"]).exit_code == 0
    assert operations.state("messages").mode == "off"
    assert len(db.session.scalars(select(AuditLog)).all()) == 2


def test_the_strategies_run_is_skipped_while_off_for_everyone(app, db):
    from portal.ops import invariants
    from portal.strategies.run import run_and_record

    operations.set_flag(db.session, "strategies", "off", None, "test")
    db.session.commit()
    run = run_and_record(db.session, trigger="manual")
    assert run.status == "skipped" and "feature flag strategies is off" in run.note
    assert db.session.scalars(select(IntegrationRun)).all() == [run]
    results = invariants.check_all(db.session, names=["run_counts"])
    assert [r.violations for r in results] == [0]

    operations.set_flag(db.session, "strategies", "all", None, "test")
    db.session.commit()
    assert run_and_record(db.session, trigger="manual").status == "succeeded"


def test_the_messages_dispatcher_waits_while_off_for_everyone(app, db):
    from workers.jobs import messages as jobs

    operations.set_flag(db.session, "messages", "off", None, "test")
    db.session.commit()
    assert jobs._switched_off()
    operations.set_flag(db.session, "messages", "all", None, "test")
    db.session.commit()
    assert not jobs._switched_off()


def test_every_gated_blueprint_exists(app):
    for flag in FLAGS.values():
        for blueprint in flag.blueprints:
            assert blueprint in app.blueprints, (flag.name, blueprint)
