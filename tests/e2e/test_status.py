"""``python -m shared.status`` against the running system: every service is running,
so every queue has a consumer and no outbox is stuck."""

from __future__ import annotations

import re
import subprocess
import sys

from shared.stack import ROOT
from tests.e2e.flows import wait_until


def status(running) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "shared.status"], cwd=ROOT, env=running.env, capture_output=True, text=True, timeout=60,
    )


def needs_a_look(done: subprocess.CompletedProcess) -> list[str]:
    # other tests may leave dead letters on purpose, and open connections of their own;
    # nothing else may need a look
    return [line for line in done.stdout.splitlines()
            if line.startswith("- ") and "dead-letter" not in line and "PostgreSQL has" not in line]


def all_running(running) -> subprocess.CompletedProcess | None:
    done = status(running)
    return None if needs_a_look(done) else done


def test_the_status_check_sees_every_service_running(running):
    # (a service another test restarted may still be starting)
    done = wait_until(lambda: all_running(running), timeout=30, what="every service to be running")
    assert "rpc-verify" in done.stdout and "evt-member-joined--healthsync.on_member_joined" in done.stdout
    # every process names its connections, so the operator sees who holds them
    held = dict(re.findall(r"^  (\S+) +(\d+)$", done.stdout, re.M))
    for name in ("tuantibu-org-relay", "tuantibu-member-relay", "tuantibu-verify-relay",
                 "tuantibu-healthsync-relay", "healthkit-simulator"):
        assert int(held.get(name, 0)) >= 1, (name, done.stdout)
    if "dead-letter queue" not in done.stdout:
        assert done.returncode == 0 and "all well" in done.stdout
