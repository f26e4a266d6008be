"""The KPI dashboard and assignment pages over HTTP: who may see what, CSV export, bulk
reassignment, CSV upload preview (422 with the lines in error) and apply, the KPI job."""

from __future__ import annotations

import io

from sqlalchemy import func, select

from portal.models import Case, CaseAssignment, KpiAgentDaily, KpiPortfolioSnapshot, Notification
from tests.integration.test_assignment import bulk_cases
from tests.integration.test_kpis import scenario  # noqa: F401


def test_kpi_page_permissions_and_team_scope(client, login, make_user, scenario):  # noqa: F811
    login(make_user("agent"))
    assert client.get("/supervisor/kpi/").status_code == 403
    supervisor = make_user("supervisor")
    scenario["north"].supervisor_id = supervisor.id
    from portal.extensions import db

    db.session.commit()
    login(supervisor)
    page = client.get("/supervisor/kpi/?period=month")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Agent A" in html and "Agent C" not in html  # South is not supervised
    assert "Right-party contact rate" in html and "<svg" in html
    assert "40.0 %" in html  # agent A this month, hand-computed in test_kpis
    assert client.get(f"/supervisor/kpi/?team={scenario['south'].id}").status_code == 403
    assert client.get("/supervisor/kpi/?period=year").status_code == 400
    export = client.get(f"/supervisor/kpi/export.csv?team={scenario['north'].id}&period=month")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert "attachment" in export.headers["Content-Disposition"]
    assert ",Agent A,0.4000," in export.get_data(as_text=True)
    admin = make_user("admin")
    login(admin)
    html = client.get("/supervisor/kpi/?period=today").get_data(as_text=True)
    assert "Agent A" in html and "Agent C" in html


def test_bulk_and_upload_pages(db, client, login, csrf_token, make_user, make_team):
    supervisor = make_user("supervisor")
    team = make_team(name="Pages team", supervisor_id=supervisor.id)
    a = make_user("agent", username="pa", full_name="Page Agent A", team_id=team.id)
    b = make_user("agent", username="pb", full_name="Page Agent B", team_id=team.id)
    cifs = bulk_cases(db, 6, prefix="P", assigned_agent_id=a.id)
    login(make_user("agent"))
    assert client.get("/supervisor/assignment/").status_code == 403
    login(supervisor)
    token = csrf_token("/supervisor/assignment/")
    page = client.get(f"/supervisor/assignment/?agent={a.id}").get_data(as_text=True)
    assert all(f'data-cif="{c}"' in page for c in cifs)
    ids = list(db.session.scalars(select(Case.id).where(Case.cif.in_(cifs[:5]))))
    response = client.post("/supervisor/assignment/bulk", data={
        "csrf_token": token, "role": "agent", "agent": str(a.id), "target": str(b.id),
        "case_id": [str(i) for i in ids], "scope": "selected"}, follow_redirects=True)
    assert response.status_code == 200
    assert "5 cases assigned" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).where(Case.assigned_agent_id == b.id)) == 5
    missing = client.post("/supervisor/assignment/bulk", data={
        "csrf_token": token, "role": "agent", "target": str(b.id), "scope": "selected"})
    assert missing.status_code == 422 and "Tick the cases" in missing.get_data(as_text=True)

    bad = f"cif,agent\n{cifs[5]},pb\nNOPE,pb\n{cifs[5]},pb\n"
    preview = client.post("/supervisor/assignment/upload", data={
        "csrf_token": token, "file": (io.BytesIO(bad.encode()), "a.csv")},
        content_type="multipart/form-data")
    html = preview.get_data(as_text=True)
    assert preview.status_code == 422
    assert 'data-line="3"' in html and "Unknown cif NOPE" in html
    assert 'data-line="4"' in html and "already on line 2" in html
    refused = client.post("/supervisor/assignment/upload/apply",
                          data={"csrf_token": token, "content": bad})
    assert refused.status_code == 422
    assert db.session.scalar(select(Case.assigned_agent_id).where(Case.cif == cifs[5])) == a.id
    applied = client.post("/supervisor/assignment/upload/apply",
                          data={"csrf_token": token, "content": bad, "skip_invalid": "1"},
                          follow_redirects=True)
    assert "CSV applied: 1 case assigned, 2 line(s) with errors skipped" in \
        applied.get_data(as_text=True)
    assert db.session.scalar(select(Case.assigned_agent_id).where(Case.cif == cifs[5])) == b.id
    assert db.session.scalar(select(func.count()).select_from(CaseAssignment)) == 6
    assert db.session.scalar(select(func.count()).where(Notification.user_id == b.id)) == 2


def test_kpi_job_fills_aggregates_and_snapshots(db, app, scenario):  # noqa: F811
    from workers.jobs.kpis import aggregate_kpis

    result = aggregate_kpis()
    assert result["days_to"] == "2026-11-17"
    assert result["days_from"] == "2026-11-01"
    assert db.session.scalar(select(func.count()).select_from(KpiAgentDaily)) == 2
    # 2 teams x distinct period starts (today 18 Nov, week 16 Nov, month 1 Nov)
    assert db.session.scalar(select(func.count()).select_from(KpiPortfolioSnapshot)) == 6
