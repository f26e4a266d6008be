"""Known vulnerabilities in the locked dependencies (`make audit`, and a CI step before the tests).

    python .ci/audit_lock.py requirements/lock.txt

1. pip-audit over the lock as it is (`--disable-pip --require-hashes`: the exact pinned versions,
   nothing resolved or installed), asking PyPI's vulnerability data for each pinned version.
2. A dependency pip-audit could not look up (some PyPI mirrors do not serve the per-version JSON
   it asks for) is checked from the project's JSON instead when the pinned version is the
   project's latest release (that JSON lists the latest release's known vulnerabilities).
3. Exit 1 when any pinned version has a known vulnerability (bump the pin: `make lock` after
   raising the floor in pyproject.toml, or `make lock UPGRADE=1`). Dependencies that could be
   checked neither way are listed as a warning; AUDIT_STRICT=1 makes them fail too (exit 2).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

PYPI_JSON = os.environ.get("AUDIT_PYPI_JSON", "https://pypi.org/pypi/{name}/json")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def pinned(lock: str) -> dict[str, str]:
    pins = {}
    with open(lock) as handle:
        for line in handle:
            match = PIN.match(line)
            if match:
                pins[normalise(match.group(1))] = match.group(2)
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_audit(lock: str) -> dict:
    """pip-audit's JSON report: {"dependencies": [{name, version, vulns} | {name, skip_reason}]}"""
    result = subprocess.run(
        [sys.executable, "-m", "pip_audit", "--disable-pip", "--require-hashes", "-r", lock,
         "--format", "json", "--progress-spinner", "off"],
        capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1) or not result.stdout.strip():
        sys.stderr.write(result.stderr)
        raise SystemExit(f"pip-audit failed (exit {result.returncode})")
    return json.loads(result.stdout)


def latest_release_vulns(name: str, version: str) -> list[dict] | None:
    """Known vulnerabilities of ``version`` when it is the project's latest release, else None
    (not checkable this way)."""
    for _attempt in range(2):
        try:
            with urllib.request.urlopen(PYPI_JSON.format(name=name), timeout=20) as response:
                data = json.load(response)
            break
        except (OSError, ValueError):
            continue
    else:
        return None
    if data.get("info", {}).get("version") != version:
        return None
    return [v for v in data.get("vulnerabilities") or [] if not v.get("withdrawn")]


def main(lock: str) -> int:
    pins = pinned(lock)
    report = pip_audit(lock)
    vulnerable: dict[str, list[dict]] = {}
    skipped: dict[str, str] = {}
    for dep in report.get("dependencies", []):
        name = normalise(dep["name"])
        if dep.get("skip_reason"):
            skipped[name] = dep["skip_reason"]
        elif dep.get("vulns"):
            vulnerable[name] = dep["vulns"]
    fallback: dict[str, list[dict] | None] = {}
    if skipped:
        with ThreadPoolExecutor(8) as pool:
            names = [n for n in skipped if n in pins]
            fallback = dict(zip(names, pool.map(lambda n: latest_release_vulns(n, pins[n]),
                                                names), strict=True))
    unaudited = sorted(n for n in skipped if fallback.get(n) is None)
    for name, vulns in fallback.items():
        if vulns:
            vulnerable[name] = [{"id": v.get("id"), "fix_versions": v.get("fixed_in", []),
                                 "aliases": v.get("aliases", [])} for v in vulns]
    checked = len(pins) - len(unaudited)
    print(f"audited {checked} of {len(pins)} locked packages "
          f"({len(pins) - len(skipped)} by pip-audit, {checked - len(pins) + len(skipped)} "
          "from the project's latest-release data)")
    for name in sorted(vulnerable):
        for vuln in vulnerable[name]:
            aliases = ", ".join(vuln.get("aliases") or [])
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed release yet"
            print(f"VULNERABLE {name}=={pins.get(name, '?')}: {vuln.get('id')}"
                  f"{f' ({aliases})' if aliases else ''}; fixed in {fixed}")
    if unaudited:
        print("WARNING: not audited (pip-audit could not look them up and the pinned version "
              "is not the latest release): "
              + ", ".join(f"{n}=={pins.get(n, '?')}" for n in unaudited))
    if vulnerable:
        print(f"{len(vulnerable)} locked package(s) with known vulnerabilities: bump the pins")
        return 1
    if unaudited and os.environ.get("AUDIT_STRICT") == "1":
        return 2
    print("no known vulnerabilities in the locked dependencies")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "requirements/lock.txt"))
