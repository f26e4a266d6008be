"""The benchmark summary: one row per recorded figure, written at the end of the session as the
top block of docs/performance.md (date, commit, machine, sizes, and the table). The detail
blocks each benchmark writes further down the file are left as they are."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.benchmarks.sizing import bench_full, sizes_label

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench-summary:begin -->", "<!-- bench-summary:end -->"
DATA = re.compile(r"<!-- bench-summary-rows: (.*?) -->", re.S)


@dataclass
class Row:
    name: str
    figure: float
    unit: str
    baseline: float | None = None
    baseline_label: str | None = None
    ratio: float | None = None
    target: str | None = None
    met: bool | None = None
    notes: str = ""
    module: str = ""
    measured: str = ""
    sizes: str = ""
    load: str = ""  # the 1-minute load average when the figure was recorded


def number(value: float | None) -> str:
    if value is None:
        return "—"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if size >= 0.01 or size == 0 else f"{value:.2g}"


def _command(*args: str) -> str:
    try:
        return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=10,
                              check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _commit() -> str:
    sha = _command("git", "rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = _command("git", "status", "--porcelain", "--untracked-files=no")
    return f"{sha} (with uncommitted changes)" if dirty else sha


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _service_versions() -> tuple[str, str]:
    from tests.settings import service_urls

    db_url, redis_url = service_urls()
    postgres = redis_version = "unknown"
    try:
        import psycopg

        with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"),
                             connect_timeout=5) as conn:
            postgres = conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:  # noqa: BLE001 - the report says so instead of failing the run
        postgres = f"unknown ({type(exc).__name__})"
    try:
        from redis import Redis

        client = Redis.from_url(redis_url, socket_timeout=5)
        redis_version = client.info("server")["redis_version"]
        client.close()
    except Exception as exc:  # noqa: BLE001
        redis_version = f"unknown ({type(exc).__name__})"
    return postgres, redis_version


def _load() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


@dataclass
class BenchReport:
    """What ``bench_report`` hands to the benchmarks (see tests/benchmarks/conftest.py)."""

    rows: list[Row] = field(default_factory=list)
    modules_run: set[str] = field(default_factory=set)
    current_module: str = ""
    started: float = field(default_factory=time.time)
    load_at_start: str = field(default_factory=_load)

    def record(self, name: str, figure: float, unit: str, baseline: float | None = None,
               baseline_label: str | None = None, ratio: float | None = None,
               target: str | None = None, met: bool | None = None, notes: str = "") -> Row:
        if ratio is None and baseline not in (None, 0) and figure is not None:
            ratio = figure / baseline
        row = Row(name=name, figure=figure, unit=unit, baseline=baseline,
                  baseline_label=baseline_label, ratio=ratio, target=target, met=met,
                  notes=notes, module=self.current_module,
                  measured=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                  sizes="full" if bench_full() else "reduced", load=_load().split(" / ")[0])
        self.rows = [r for r in self.rows if r.name != name] + [row]
        return row

    # -- writing ----------------------------------------------------------------------------

    def merged_rows(self, previous: list[Row]) -> list[Row]:
        """This session's rows, plus earlier rows of benchmark files this session did not run
        (running one benchmark file alone keeps the others' last figures)."""
        names = {r.name for r in self.rows}
        kept = [r for r in previous
                if r.name not in names and r.module and r.module not in self.modules_run]
        return sorted(kept + self.rows, key=lambda r: r.module)  # stable: recorded order

    def write(self, path: Path = REPORT) -> None:
        if not self.rows:
            return
        text = path.read_text() if path.exists() else "# Performance\n"
        previous = _previous_rows(text)
        block = self.render(self.merged_rows(previous))
        if BEGIN in text:
            text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _m: block, text,
                          count=1, flags=re.S)
        else:
            head, _, rest = text.partition("\n")  # after the title
            titled = head.startswith("# ")
            text = f"{head}\n\n{block}\n{rest}" if titled else f"{block}\n\n{text}"
        path.write_text(text)

    def render(self, rows: list[Row]) -> str:
        postgres, redis_version = _service_versions()
        minutes = (time.time() - self.started) / 60
        lines = [
            BEGIN,
            "## Summary (written by `make bench`)",
            "",
            "Written at the end of every benchmark session (`make bench`: reduced sizes; "
            "`make bench-full`: the issues' sizes); each benchmark's details are in its own "
            "section below. Ratio = figure ÷ baseline, both measured in the same run.",
            "",
            f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} "
            f"(session of {minutes:.1f} min)",
            f"- Commit: {_commit()}",
            f"- Machine: {_cpu_model()}, {os.cpu_count()} cores, {_ram()} RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
            f"- PostgreSQL {postgres}, Redis {redis_version} (same host)",
            f"- Load average (1/5/15 min): {self.load_at_start} at start, {_load()} at end "
            "— the machine is shared, so each figure is read against a baseline measured in "
            "the same run",
            f"- Sizes: {sizes_label()}",
            "",
            "| benchmark | figure | baseline (same run) | ratio | target | result |",
            "|---|---:|---|---:|---|---|",
        ]
        for row in rows:
            baseline = "—"
            if row.baseline is not None:
                baseline = f"{number(row.baseline)} {row.unit}"
                if row.baseline_label:
                    baseline += f" ({row.baseline_label})"
            elif row.baseline_label:
                baseline = row.baseline_label
            result = {True: "met", False: "**not met**", None: ""}[row.met]
            notes = row.notes
            if row.met is False and row.load:
                notes = f"{notes}; load average {row.load} at the time".lstrip("; ")
            result = f"{result}: {notes}" if result and notes else result or notes or "—"
            name = row.name
            if row.module not in self.modules_run:
                name += f" (earlier run, {row.measured}, {row.sizes})"
            cells = [name, f"{number(row.figure)} {row.unit}", baseline,
                     number(row.ratio), row.target or "—", result]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        data = json.dumps([asdict(r) for r in rows]).replace("--", "-\\u002d")  # no "-->" inside
        lines += ["", f"<!-- bench-summary-rows: {data} -->",
                  END]
        return "\n".join(lines)


def _previous_rows(text: str) -> list[Row]:
    match = DATA.search(text)
    if not match:
        return []
    try:
        return [Row(**item) for item in json.loads(match.group(1))]
    except (ValueError, TypeError):
        return []


def write_detail(key: str, heading: str, lines: list[str], path: Path = REPORT) -> None:
    """(Re)write a benchmark's own detail block, between ``<!-- {key}:begin -->`` and
    ``<!-- {key}:end -->``; the first time, appended at the end under ``## {heading}``."""
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    block = "\n".join([begin, *lines, end])
    text = path.read_text() if path.exists() else "# Performance\n"
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _m: block, text,
                      count=1, flags=re.S)
    else:
        text = f"{text.rstrip()}\n\n## {heading}\n\n{block}\n"
    path.write_text(text)
