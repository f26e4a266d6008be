"""The assignment CSV upload (portal.assignment.operations.preview_csv / apply_csv and its
pages) under arbitrary files: every line is accepted or refused with a reason, never a 500;
the lines accepted are exactly those an independent model of the rules accepts; applying is
all or nothing (or the valid lines only, when asked), never half-written."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from portal.assignment import operations as assignment
from portal.assignment.operations import AssignmentError
from portal.models import Case, CaseAssignment, Customer
from tests.conftest import csrf_token_from
from tests.property.conftest import examples
from tests.property.strategies import NASTY

CIFS = [f"P{i:05d}" for i in range(6)]
OUTSIDE = "S00000"  # held by an agent of another team


@pytest.fixture
def world(db, make_team, make_user):
    supervisor = make_user("supervisor", username="sup")
    north = make_team(name="North", supervisor_id=supervisor.id)
    south = make_team(name="South")
    agents = [make_user("agent", username=f"north{i}", team_id=north.id) for i in range(2)]
    field = make_user("field_agent", username="field0", team_id=north.id)
    other = make_user("agent", username="south0", team_id=south.id)
    gone = make_user("agent", username="gone0", team_id=north.id, active=False)
    db.session.execute(insert(Customer), [{"cif": c, "name": c, "source_system": "T24"}
                                          for c in [*CIFS, OUTSIDE]])
    db.session.execute(insert(Case), [{"cif": c, "max_dpd": 30, "total_overdue": Decimal(1)}
                                      for c in CIFS])
    db.session.execute(insert(Case), [{"cif": OUTSIDE, "assigned_agent_id": other.id}])
    db.session.commit()
    users = {u.username: u for u in [supervisor, *agents, field, other, gone]}
    return {"supervisor": supervisor, "users": users}


cell = st.one_of(
    st.sampled_from([*CIFS, OUTSIDE, "NOPE", "", " ", "north0", "NORTH1", "field0", "south0",
                     "gone0", "sup", "ghost"]),
    st.sampled_from(NASTY), st.text(max_size=12))
rows = st.lists(st.lists(cell, min_size=0, max_size=4), max_size=12)
headers = st.one_of(st.just(["cif", "agent"]), st.just(["agent", "cif", "reason"]),
                    st.permutations(["cif", "agent", "note"]), st.lists(cell, max_size=3))


def to_csv(header, body) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(body)
    return out.getvalue()


def expected(world, header, body) -> dict[int, bool] | None:
    """An independent model of the rules: line number -> acceptable (None: whole file refused).
    """
    names = [h.strip().lower() for h in header]
    if "cif" not in names or "agent" not in names or "\x00" in to_csv(header, body):
        return None
    ci, ai = names.index("cif"), names.index("agent")
    users = {u.lower(): user for u, user in world["users"].items()}
    out, seen = {}, set()
    number = 2 + sum(c.count("\n") for c in header)  # the line a record starts on
    for row in body:
        number, start = number + 1 + sum(c.count("\n") for c in row), number
        if not any(c.strip() for c in row):
            continue
        cif = row[ci].strip() if ci < len(row) else ""
        agent = users.get(row[ai].strip().lower() if ai < len(row) else "")
        ok = (cif in CIFS and agent is not None and agent.active
              and agent.role in ("agent", "field_agent") and agent.username != "south0"
              and (cif, agent.role) not in seen)
        if ok:
            seen.add((cif, agent.role))
        out[start] = ok
    return out


def assignments(db) -> int:
    value = db.session.scalar(select(func.count()).select_from(CaseAssignment))
    db.session.rollback()
    return value


@examples()
@given(header=headers, body=rows)
def test_every_line_is_accepted_or_refused_with_a_reason_as_the_rules_say(db, world, header,
                                                                        body):
    content = to_csv(header, body)
    preview = assignment.preview_csv(db.session, world["supervisor"], content)
    model = expected(world, header, body)
    if model is None or not body:
        assert preview.fatal or not preview.lines
        return
    assert preview.fatal is None
    got = {line.line: line.error is None for line in preview.lines}
    assert got == model, (content, [(x.line, x.error) for x in preview.lines])
    assert all(line.error for line in preview.errors)


@examples()
@given(header=headers, body=rows, skip=st.booleans())
def test_applying_is_all_or_nothing_or_exactly_the_valid_lines(db, world, header, body, skip):
    content = to_csv(header, body)
    before = assignments(db)
    preview = assignment.preview_csv(db.session, world["supervisor"], content)
    try:
        _, results = assignment.apply_csv(db.session, world["supervisor"], content,
                                          skip_invalid=skip)
        db.session.commit()
    except AssignmentError as exc:
        db.session.rollback()
        assert str(exc)
        assert assignments(db) == before  # nothing half-written
        return
    assert skip or not preview.errors
    changed = sum(r.changed for r in results)
    assert changed <= len(preview.valid)
    assert assignments(db) == before + changed


files = st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                  st.builds(lambda h, b: to_csv(h, b).encode(), headers, rows),
                  st.sampled_from([b"cif,agent\n\x00,north0\n", b'cif,agent\n"P00000,north0\n',
                                   b"\xef\xbb\xbfcif,agent\nP00000,north0\n",
                                   "cif,agent\nP00000,north0\n".encode("utf-16")]))


@examples(0.6)
@given(content=files)
def test_any_uploaded_file_gets_a_page_never_a_500(client, db, world, login, content):
    login(world["supervisor"])
    token = csrf_token_from(client.get("/supervisor/assignment/upload").get_data(as_text=True))
    before = assignments(db)
    preview = client.post("/supervisor/assignment/upload", data={
        "csrf_token": token, "file": (io.BytesIO(content), "cases.csv")},
        content_type="multipart/form-data")
    assert preview.status_code in (200, 422), preview.status_code
    text = content.decode("utf-8", "replace")
    applied = client.post("/supervisor/assignment/upload/apply",
                          data={"csrf_token": token, "content": text, "skip_invalid": "1"})
    assert applied.status_code in (302, 422), applied.status_code
    if applied.status_code == 422:
        assert assignments(db) == before


def test_an_oversized_file_is_refused(client, db, world, login):
    login(world["supervisor"])
    token = csrf_token_from(client.get("/supervisor/assignment/upload").get_data(as_text=True))
    content = b"cif,agent\n" + b"P00000,north0\n" * 200_000  # 2.8 MB
    # the multipart body encoded here: werkzeug's test client would spool it to a temporary
    # file it never closes (a ResourceWarning, an error under this suite's filterwarnings)
    boundary = "propboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"
            f"{token}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"cases.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode() + content \
        + f"\r\n--{boundary}--\r\n".encode()
    response = client.post("/supervisor/assignment/upload", data=body,
                           content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 422 and "larger than 2 MB" in response.get_data(as_text=True)
    assert assignments(db) == 0
