"""The database a load test runs on: the demo seed (``flask seed-demo``) at a given size, API
tokens for the field agents, and what the requests need from it (agents with their own cases,
search terms, loans to pay)."""

from __future__ import annotations

import os

from sqlalchemy import text

from portal.seed.demo import DEFAULT_DEMO_PASSWORD
from tests.load.mix import Agent, World

PAYMENT_SECRET = "test-payments-current"  # TestConfig.PAYMENT_WEBHOOK_SECRETS


def seed(app, customers: int, products: int) -> None:
    result = app.test_cli_runner().invoke(
        args=["seed-demo", "--customers", str(customers), "--loans", str(products)])
    assert result.exit_code == 0, result.output


def build_world(db, *, agents: int = 10, field_agents: int = 4, loans: int = 500,
                gps_batch_points: int = 50) -> World:
    """Read the seeded database: the ``agents`` collection agents holding the most open cases
    (with up to 50 of their customers each), ``field_agents`` field agents with a fresh token."""
    from portal.models import User
    from portal.permissions import tokens as api_tokens

    password = os.environ.get("DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD
    rows = db.session.execute(text("""
        SELECT u.username, u.id FROM users u JOIN cases c ON c.assigned_agent_id = u.id
        WHERE u.role = 'agent' AND u.active AND c.status <> 'closed'
        GROUP BY u.username, u.id ORDER BY count(*) DESC, u.username LIMIT :n"""),
        {"n": agents}).all()
    people = []
    for username, user_id in rows:
        customers = db.session.execute(text("""
            SELECT c.cif, cu.name FROM cases c JOIN customers cu ON cu.cif = c.cif
            WHERE c.assigned_agent_id = :a AND c.status <> 'closed'
            ORDER BY c.priority DESC, c.cif LIMIT 50"""), {"a": user_id}).all()
        names = tuple(" ".join(name.split()[-2:]) for _, name in customers)
        people.append(Agent(username, password, tuple(cif for cif, _ in customers), names))
    assert people, "the seed holds no collection agent with open cases"
    tokens = []
    for user in db.session.scalars(db.select(User).where(User.role == "field_agent",
                                                         User.active.is_(True))
                                   .order_by(User.username).limit(field_agents)):
        _, raw = api_tokens.create_token(db.session, name=f"load test {user.username}",
                                         scopes=["api.locations"], user=user,
                                         created_by="load test")
        tokens.append(raw)
    assert tokens, "the seed holds no field agent"
    accounts = db.session.execute(text("""
        SELECT account_number, cif FROM loans ORDER BY account_number LIMIT :n"""),
        {"n": loans}).all()
    assert accounts, "the seed holds no loan"
    db.session.commit()
    return World(agents=tuple(people), loans=tuple((a, c) for a, c in accounts),
                 field_tokens=tuple(tokens), payment_secret=PAYMENT_SECRET,
                 gps_batch_points=gps_batch_points)


def server_env(app) -> dict[str, str]:
    """The gunicorn portal on the test database and Redis (TestConfig), logging warnings only,
    with a login rate limit for a call centre behind one address (every virtual agent logs in
    from 127.0.0.1; the default 30 a minute is per address)."""
    return {"PORTAL_ENV": "testing", "LOG_LEVEL": "WARNING",
            "TEST_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "TEST_REDIS_URL": app.config["REDIS_URL"],
            "LOGIN_RATE_LIMIT": "6000 per minute"}
