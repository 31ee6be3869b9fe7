"""How `make audit` (tests/audit.py) judges a pip-audit run: findings fail, only an unusable service is let pass."""

import pytest

from tests.audit import verdict

CLEAN = {"name": "pillow", "version": "13.0.0", "vulns": []}
VULNERABLE = {"name": "pillow", "version": "9.0.0", "vulns": [{"id": "GHSA-8vj2-vxx3-667w", "fix_versions": ["9.0.1"]}]}
NOT_ON_PYPI = {"name": "torch", "skip_reason": "Dependency not found on PyPI and could not be audited: torch (2.15.0)"}
EDITABLE = {"name": "mine", "skip_reason": "distribution marked as editable"}
NO_DNS = ("Traceback (most recent call last):\n...\nrequests.exceptions.ConnectionError: HTTPSConnectionPool(host="
          "'pypi.org', port=443): Max retries exceeded (Caused by NameResolutionError(...))")


@pytest.mark.parametrize("returncode, report, log, status, words", [
    (0, {"dependencies": [CLEAN, CLEAN]}, "", 0, "2 packages audited, no known vulnerabilities"),
    (1, {"dependencies": [CLEAN, VULNERABLE]}, "", 1, "pillow 9.0.0: GHSA-8vj2-vxx3-667w (fixed in 9.0.1)"),
    (1, {"dependencies": [VULNERABLE, NOT_ON_PYPI]}, "", 1, "GHSA-8vj2-vxx3-667w"),   # findings, whatever else
    (0, {"dependencies": [NOT_ON_PYPI, NOT_ON_PYPI]}, "", 0, "NOT AUDITED: the vulnerability service knew none"),
    (0, {"dependencies": [CLEAN, NOT_ON_PYPI]}, "", 0, "1 packages audited, no known vulnerabilities; not audited: torch"),
    (0, {"dependencies": [EDITABLE]}, "", 0, "0 packages audited"),     # not the network: no warning of it
    (1, None, NO_DNS, 0, "NOT AUDITED: pip-audit could not reach"),
    (1, None, "Traceback ...\nKeyError: 'info'", 1, "pip-audit failed (exit 1)"),   # a crash is no network outage
    (2, {"dependencies": [CLEAN]}, "usage: pip-audit ...", 1, "pip-audit failed (exit 2)"),
])
def test_verdict(returncode, report, log, status, words):
    got_status, message = verdict(returncode, report, log)
    assert (got_status, words in message) == (status, True), message
