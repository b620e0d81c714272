"""`make run` (``python -m shared.stack``): a clear paragraph when PostgreSQL or RabbitMQ
cannot be reached, and Ctrl-C, or SIGTERM to its whole process group (from timeout or a
service manager), stops every process it started, cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from shared.stack import ROOT
from tests.bus import create_vhost, delete_vhost
from tests.conftest import create_database, drop_database, free_port


def launch(env_overrides: dict) -> subprocess.Popen:
    """In a process group of its own, as a shell runs a command."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **env_overrides}
    return subprocess.Popen(
        [sys.executable, "-m", "shared.stack"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, process_group=0,
    )


def test_an_unreachable_rabbitmq_gets_a_clear_message():
    closed = free_port()
    proc = launch({"AMQP_URI": f"amqp://guest:guest@127.0.0.1:{closed}/"})
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"RabbitMQ did not answer at amqp://127.0.0.1:{closed}/" in out
    assert "rabbitmq-server -detached" in out and "Traceback" not in out


def test_an_unreachable_postgresql_gets_a_clear_message():
    closed = free_port()
    proc = launch({"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed}/tuantibu"})
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"PostgreSQL did not answer at postgresql://postgres@127.0.0.1:{closed}/tuantibu" in out
    assert "pg_ctlcluster" in out and "Traceback" not in out


def children_of(pid: int) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return {int(p) for p in found}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is gone for our purposes
        return f.read().split()[2] != "Z"


def ctrl_c(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)


def sigterm_to_the_group(proc: subprocess.Popen) -> None:
    # what timeout(1) or a service manager does: every process of the group at once
    os.killpg(proc.pid, signal.SIGTERM)


@pytest.mark.parametrize("stop", [ctrl_c, sigterm_to_the_group])
def test_it_starts_everything_prints_where_to_go_and_a_signal_stops_it_all(stop):
    database_url = create_database()
    vhost, amqp_uri = create_vhost(trace=False)
    gateway, sim = free_port(), free_port()
    proc = launch({
        "DATABASE_URL": database_url, "AMQP_URI": amqp_uri, "DEMO_RESIDENTS": "20",
        "GATEWAY_ADDRESS": f"127.0.0.1:{gateway}", "PUBLIC_BASE_URL": f"http://127.0.0.1:{gateway}",
        "HEALTHKIT_SIM_ADDRESS": f"127.0.0.1:{sim}", "HEALTHKIT_URL": f"http://127.0.0.1:{sim}",
        "SYNC_TIMES": "", "LOG_LEVEL": "WARNING",
    })
    try:
        lines = []
        deadline = time.monotonic() + 90
        while not any("Press Ctrl-C" in line for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines[-20:])
            lines.append(proc.stdout.readline())
        printed = "".join(lines)
        assert f"http://127.0.0.1:{gateway}" in printed
        assert "110101199003071233" in printed and "13800138000" in printed  # the demo resident
        assert "/api/dev/sms?phone=13800138000" in printed
        assert requests.get(f"http://127.0.0.1:{gateway}/api/health", timeout=10).json()["ok"] is True
        started = children_of(proc.pid)
        assert len(started) == 6  # the simulator, four services, the gateway
        stop(proc)
        proc.wait(timeout=30)
        time.sleep(0.5)
        assert not [pid for pid in started if alive(pid)]
        # each process was stopped once, cleanly (signalled twice, a service failed to stop and hung)
        assert "Traceback" not in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        delete_vhost(vhost)
        drop_database(database_url)
