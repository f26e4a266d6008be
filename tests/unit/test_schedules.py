"""The worker jobs are named in one place (portal.schedules.Jobs) and each name is a function
of workers/jobs/."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from portal.schedules import SCHEDULES, Jobs, resolve

ROOT = Path(__file__).resolve().parents[2]


def test_every_job_name_resolves_to_a_function_of_workers_jobs():
    for name, path in Jobs.all().items():
        func = resolve(path)
        assert inspect.isfunction(func), name
        assert func.__module__.startswith("workers.jobs."), name


def test_the_schedule_runs_named_jobs():
    assert {s.func for s in SCHEDULES} <= set(Jobs.all().values())


def test_no_dotted_job_path_outside_the_catalogue():
    dotted = re.compile(r"""["']workers\.jobs\.\w+\.\w+["']""")
    found = [f"{path.relative_to(ROOT)}:{n}"
             for top in ("portal", "integrations", "workers")
             for path in sorted((ROOT / top).rglob("*.py"))
             if path != ROOT / "portal" / "schedules.py"
             for n, line in enumerate(path.read_text().splitlines(), 1) if dotted.search(line)]
    assert found == []
