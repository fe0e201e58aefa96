"""schemathesis against ``/openapi.json`` of a live server, as its admin, with every check:
no 5xx, only documented statuses and bodies, schema-valid requests accepted and
schema-violating ones refused.

Operations that invalidate keys (revoke, rotate, changing a key's expiry) are left out of
the fuzzing: generated ids cannot hit a real key, but links in responses can, and a fuzzer
that rotates the admin key away locks itself out. They have their own tests in
tests/guard. schemathesis.toml lists the operations that may refuse a request the document
allows with a 400 that depends on the server's state, each with its reason.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import register_scripted
from tests.live import live_server

SCHEMATHESIS = Path(sys.executable).with_name("st")
# Operations whose 400 depends on what the server holds (each entry says why).
CONFIG = Path(__file__).parents[1] / "schemathesis.toml"


def test_no_operation_answers_with_a_server_error(tmp_path: Path) -> None:
    home = tmp_path / "fuzz"
    home.mkdir()
    store = open_store(Settings(home=home).store_url)
    register_scripted(Registry(store), "bot", replies=["ok"])
    store.close()
    with live_server(home) as base:
        run = subprocess.run(
            [
                str(SCHEMATHESIS),
                "--config-file",
                str(CONFIG),
                "run",
                f"{base}/openapi.json",
                "--header",
                f"Authorization: Bearer {base.key}",
                "--checks",
                "all",
                "--max-examples",
                "25",
                "--seed",
                "20261124",
                "--exclude-path-regex",
                r"^/api/keys/\{key_id\}/(revoke|rotate)$",
                "--exclude-method",
                "PATCH",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert "generated" in report and " passed" in report
    assert "Authentication failed" not in report  # the admin key stayed valid throughout
