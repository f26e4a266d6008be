"""The quick pieces of `make cluster-test` (tests/cluster/plan.py): the namespace plan, the HAProxy
configuration and the accounting that decides the run's verdict. The cluster run itself needs
root and several minutes: tests/cluster/run.py."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.cluster import plan as P

TOPOLOGY = P.plan(webs=2, workers=2)


def test_every_node_has_its_own_namespace_address_and_links():
    nodes = TOPOLOGY.nodes
    assert [n.name for n in nodes] == ["web1", "web2", "worker1", "worker2"]
    for attribute in ("netns", "address", "host_link", "ns_link"):
        values = [getattr(n, attribute) for n in nodes]
        assert len(set(values)) == len(values), attribute
    assert all(len(n.host_link) <= 15 and len(n.ns_link) <= 15 for n in nodes)
    assert TOPOLOGY.gateway not in {n.address for n in nodes}
    assert all(n.address.rsplit(".", 1)[0] == TOPOLOGY.gateway.rsplit(".", 1)[0]
               for n in nodes)
    with pytest.raises(ValueError):
        P.plan(webs=0)


def test_setup_builds_what_teardown_removes():
    setup = P.setup_commands(TOPOLOGY)
    teardown = P.teardown_commands(TOPOLOGY)
    assert setup[0] == ["ip", "link", "add", TOPOLOGY.bridge, "type", "bridge"]
    for n in TOPOLOGY.nodes:
        assert ["ip", "netns", "add", n.netns] in setup
        assert ["ip", "link", "set", n.ns_link, "netns", n.netns] in setup
        assert ["ip", "-n", n.netns, "route", "add", "default", "via", TOPOLOGY.gateway] in setup
        # the namespace exists before anything is put into it
        assert setup.index(["ip", "netns", "add", n.netns]) < setup.index(
            ["ip", "link", "set", n.ns_link, "netns", n.netns])
        assert ["ip", "netns", "delete", n.netns] in teardown
        assert ["ip", "link", "delete", n.host_link] in teardown
    assert teardown[-1] == ["ip", "link", "delete", TOPOLOGY.bridge]


def test_haproxy_balances_the_web_nodes_with_health_checks_retries_and_redispatch():
    config = P.render_haproxy(TOPOLOGY)
    assert "option httpchk GET /health" in config
    assert "retries 3" in config and "option redispatch" in config
    assert "retry-on conn-failure empty-response" in config
    assert "server web1 10.77.0.11:8000 check" in config
    assert "server web2 10.77.0.12:8000 check" in config
    assert "worker" not in config.split("backend web", 1)[1].split("listen", 1)[0]
    # the loopback-only services forwarded onto the bridge, nowhere else
    assert "bind 10.77.0.1:5432" in config and "server postgres 127.0.0.1:5432" in config
    assert "bind 10.77.0.1:6379" in config and "server redis 127.0.0.1:6379" in config
    one = P.render_haproxy(TOPOLOGY, webs=TOPOLOGY.of_kind("web")[:1])
    assert "server web1 " in one and "server web2 " not in one


@pytest.mark.skipif(not shutil.which("haproxy"), reason="HAProxy not installed here")
def test_haproxy_accepts_the_configuration(tmp_path):
    path = tmp_path / "haproxy.cfg"
    path.write_text(P.render_haproxy(TOPOLOGY))
    result = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_payments_accounting_finds_lost_doubled_and_phantom_payments():
    attempted = {"A", "B", "C", "D", "E"}
    answered = {"A", "B", "C", "D"}  # E failed beyond the retries: stored or not, not "lost"
    clean = P.account_payments(answered, attempted, {"A": 1, "B": 1, "C": 1, "D": 1},
                               {"A": 1, "B": 1, "C": 1, "D": 1},
                               {"A": 1, "B": 1, "C": 1, "D": 1})
    assert clean.problems == 0 and (clean.answered, clean.unanswered) == (4, 1)

    account = P.account_payments(
        answered, attempted,
        payments={"A": 1, "B": 2, "C": 1, "E": 1, "Z": 1},  # D lost, B doubled, Z phantom
        events={"A": 2, "B": 1, "E": 1, "Z": 1},  # A's event doubled, C's lost
        effects={"A": 1, "B": 1, "E": 2, "Z": 1},  # E's effect doubled
        undelivered=3)
    assert account.lost == ["D"]
    assert account.doubled == ["B"]
    assert account.phantom == ["Z"]
    assert account.events_doubled == ["A"] and account.events_lost == ["C"]
    assert account.effects_doubled == ["E"] and account.effects_lost == []
    assert account.problems == 6 + 3


def test_effect_missing_for_a_stored_event_is_lost():
    account = P.account_payments({"A"}, {"A"}, {"A": 1}, {"A": 1}, {})
    assert account.effects_lost == ["A"] and account.problems == 1


EVENT = "7663b628b6f248628931a0991a68c037"


def test_killed_jobs_finished_exactly_once_or_not():
    jobs = [f"ev-{EVENT}-3231ed1be826",  # delivered once
            f"ev-{EVENT}-aaaaaaaaaaaa-s1a2b3",  # a fresh job id of a handed-over delivery
            f"ev-{'0' * 32}-bbbbbbbbbbbb",  # ran twice
            f"ev-{'1' * 32}-cccccccccccc",  # still pending
            f"ev-{'2' * 32}-dddddddddddd",  # no row at all
            "relay-123"]
    deliveries = {(EVENT, "3231ed1be826"): ("delivered", 1),
                  (EVENT, "aaaaaaaaaaaa"): ("delivered", 1),
                  ("0" * 32, "bbbbbbbbbbbb"): ("delivered", 2),
                  ("1" * 32, "cccccccccccc"): ("pending", 0)}
    judged = {j.job_id: j for j in P.judge_killed_jobs(jobs, deliveries, {"relay-123": "failed"})}
    assert judged[f"ev-{EVENT}-3231ed1be826"].ok is True
    assert judged[f"ev-{EVENT}-aaaaaaaaaaaa-s1a2b3"].ok is True
    assert judged[f"ev-{'0' * 32}-bbbbbbbbbbbb"].outcome == "ran 2 times"
    assert judged[f"ev-{'1' * 32}-cccccccccccc"].outcome == "not finished (pending)"
    assert judged[f"ev-{'2' * 32}-dddddddddddd"].ok is False
    assert judged["relay-123"].ok is None and "failed" in judged["relay-123"].outcome
    verdict = P.Verdict(0, P.account_payments(set(), set(), {}, {}, {}), list(judged.values()))
    assert verdict.killed_jobs_wrong == 3 and not verdict.ok


def test_report_verdict_and_throughput_ratio():
    clean = P.account_payments({"A"}, {"A"}, {"A": 1}, {"A": 1}, {"A": 1})
    runs = [P.Throughput(1, 1000, 25.0, 0, 300, 20.0, round=1, load=3.0),
            P.Throughput(2, 1500, 25.0, 0, 300, 10.0, round=1, load=4.0),
            P.Throughput(1, 500, 25.0, 0, 300, 30.0, round=2, load=9.0),  # a disturbed round
            P.Throughput(2, 1000, 25.0, 0, 300, 15.0, round=2, load=9.5)]
    assert P.best_runs(runs) == {1: {"requests": 40.0, "jobs": 15.0},
                                 2: {"requests": 60.0, "jobs": 30.0}}
    ok = P.Verdict(0, clean, [P.KilledJob("ev-x", "once", True)],
                   balancer={"econ": 2, "eresp": 1, "wretr": 3, "wredis": 2})
    lines = P.render_report(ok, runs, when="now", machine="2 cores", chaos="kills")
    text = "\n".join(lines)
    assert "**Verdict: PASS**" in text
    assert "| 1 + 1 | 1 | 1,000 | 25 | 40.0 | 0 | 300 | 15.0 | 3.0 |" in text
    assert "requests/s ×1.50, jobs/s ×2.00" in text
    assert "| killed worker's delivery jobs finished exactly once | 1 of 1 | all |" in text
    assert "| 2 / 1 / 3 / 2 |" in text

    failed = P.Verdict(2, clean, [])
    assert not failed.ok
    assert "**Verdict: FAIL**" in "\n".join(P.render_report(failed, runs, when="now",
                                                           machine="m", chaos="c"))
    assert not P.Verdict(0, clean, [], gps_lost=1).ok


def test_balancer_counters_read_the_backend_row():
    header = "# pxname,svname," + ",".join(f"c{i}" for i in range(2, 20))
    server = "web,web1," + ",".join(["9"] * 18)
    backend = "web,BACKEND,0,0,0,0,0,100,0,0,0,0,0,4,1,6,5,UP,1"
    assert P.balancer_counters("\n".join([header, server, backend])) == {
        "econ": 4, "eresp": 1, "wretr": 6, "wredis": 5}
    assert P.balancer_counters(header) == {}
