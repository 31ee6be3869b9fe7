"""pip-audit over the project's environment: a known vulnerability fails the build; a vulnerability service
that cannot be reached or used only warns, loudly, because then nothing was audited either way.

    python -m tests.audit                 # `make audit`, which `make test` runs first

It audits the packages installed in this interpreter's environment (the .venv that make builds from the
pinned requirements files alone, so the pinned packages and what they pulled in, at the installed versions)
against PyPI's vulnerability data. Ignoring a finding takes an entry in IGNORED with the reason it does not
apply to this project.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

IGNORED: dict[str, str] = {
    # "GHSA-xxxx-xxxx-xxxx": "why this does not apply here (e.g. only the CLI of that package is affected)",
}
# How a request that never got an answer shows in pip-audit's traceback.
NETWORK = re.compile(r"requests\.exceptions\.\w*(Connection|Proxy|Timeout|SSL)|Max retries exceeded|"
                     r"Name or service not known|Temporary failure in name resolution")
NOT_FOUND = "Dependency not found on PyPI"


def verdict(returncode: int, report: dict | None, log: str) -> tuple[int, str]:
    """(exit status, what to print) for one pip-audit run: its exit status, its JSON report (None if it wrote
    none) and its stdout + stderr."""
    if report is None:
        if NETWORK.search(log):
            return 0, "WARNING: NOT AUDITED: pip-audit could not reach its vulnerability service (network)"
        return 1, f"pip-audit failed (exit {returncode}):\n{log[-3000:]}"
    deps = report.get("dependencies", [])
    found = [f"{d['name']} {d['version']}: {v['id']} (fixed in {', '.join(v['fix_versions']) or 'no release yet'})"
             for d in deps for v in d.get("vulns", [])]
    if found:
        return 1, "known vulnerabilities (upgrade the pin, or add the ID to IGNORED in tests/audit.py with a reason):" \
                  "\n  " + "\n  ".join(found)
    if returncode != 0:
        return 1, f"pip-audit failed (exit {returncode}):\n{log[-3000:]}"
    skipped = [d["name"] for d in deps if "skip_reason" in d]
    if deps and len(skipped) == len(deps) and all(NOT_FOUND in d["skip_reason"] for d in deps):
        return 0, (f"WARNING: NOT AUDITED: the vulnerability service knew none of the {len(deps)} packages "
                   "(a PyPI mirror without PyPI's JSON API answers like this)")
    note = f"; not audited: {', '.join(skipped)}" if skipped else ""
    return 0, f"pip-audit: {len(deps) - len(skipped)} packages audited, no known vulnerabilities{note}"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip_audit", "--local", "--progress-spinner", "off", "--format", "json",
               "--output", str(out)]
        for vuln in IGNORED:
            cmd += ["--ignore-vuln", vuln]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            code, log = run.returncode, run.stdout + run.stderr
        except subprocess.TimeoutExpired:
            code, log = -1, "requests.exceptions.Timeout: pip-audit got no answer within 600 s"
        report = json.loads(out.read_text()) if out.is_file() and out.stat().st_size else None
    status, message = verdict(code, report, log)
    print(message, file=sys.stderr if status or "WARNING" in message else sys.stdout)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
