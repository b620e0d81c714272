"""Memory and CPU of processes, read from /proc (Linux)."""

from __future__ import annotations

import os
import resource
import threading
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
# processes outside the stack whose CPU matters to the figures
INFRA_COMMANDS = {"postgres": "postgresql", "beam.smp": "rabbitmq"}


def memory_kb(pid: int) -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS of ``pid`` in kB; {} if it is gone."""
    found = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                found[key] = int(value.split()[0])
    except OSError:
        return {}
    return found


def cpu_seconds(pid: int, children: bool = False) -> float | None:
    """User + system CPU seconds ``pid`` has used (None if it is gone); with
    ``children``, also what its ended children used once it reaped them."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    used = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        used += int(fields[13]) + int(fields[14])  # cutime, cstime
    return used / TICKS


def _infra_pids() -> dict[str, list[int]]:
    pids: dict[str, list[int]] = {label: [] for label in INFRA_COMMANDS.values()}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry.name}/comm").read_text().strip()
        except OSError:
            continue
        label = INFRA_COMMANDS.get(comm)
        if label:
            pids[label].append(int(entry.name))
    return pids


def _system_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])
    return total - idle, total


class CpuMeter:
    """CPU seconds used between ``start()`` and ``stop()`` by each stack process, by
    PostgreSQL and RabbitMQ (all their processes on this machine, so including other
    users of the same servers), by this benchmark process (the load generator), and what
    is left of the machine's busy time ("other": anything else running meanwhile)."""

    def __init__(self, processes: dict) -> None:
        self.processes = processes

    def _sample(self) -> dict:
        sample = {name: cpu_seconds(proc.pid) for name, proc in self.processes.items()}
        for label, pids in _infra_pids().items():
            # per process, children included: PostgreSQL forks a backend per connection,
            # and what one used before it ended is then in the postmaster's children
            sample[label] = {p: cpu_seconds(p, children=True) for p in pids}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        sample["bench-client"] = usage.ru_utime + usage.ru_stime
        sample["_system"] = _system_busy()
        sample["_wall"] = time.monotonic()
        return sample

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> dict:
        end = self._sample()
        wall = end["_wall"] - self._start["_wall"]
        busy = (end["_system"][0] - self._start["_system"][0]) / max(1, end["_system"][1] - self._start["_system"][1])
        per_process = {}
        for name, value in end.items():
            if name.startswith("_") or value is None or self._start.get(name) is None:
                continue
            if isinstance(value, dict):  # by pid: those started meanwhile count in full
                before = self._start[name]
                used = sum(max(0.0, v - (before.get(pid) or 0.0)) for pid, v in value.items() if v is not None)
                # one that ended is now in its parent's reaped time with all it ever used
                used = max(0.0, used - sum(v or 0.0 for pid, v in before.items() if pid not in value))
            else:
                used = max(0.0, value - self._start[name])
            per_process[name] = {"cpu_s": round(used, 2), "cores": round(used / wall, 2) if wall else 0.0}
        cpus = os.cpu_count() or 1
        accounted = sum(p["cores"] for p in per_process.values())
        per_process["other (not this run)"] = {
            "cpu_s": None,
            "cores": round(max(0.0, busy * cpus - accounted), 2),
        }
        return {
            "wall_s": round(wall, 2),
            "machine_busy": round(busy, 3),
            "cpus": cpus,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "processes": per_process,
        }


def stack_memory(processes: dict) -> dict[str, dict[str, float]]:
    out = {}
    for name, proc in processes.items():
        kb = memory_kb(proc.pid)
        out[name] = {
            "pid": proc.pid,
            "peak_rss_mb": round(kb["VmHWM"] / 1024, 1) if "VmHWM" in kb else None,
            "rss_mb": round(kb["VmRSS"] / 1024, 1) if "VmRSS" in kb else None,
        }
    return out


class ConnectionSampler:
    """Samples PostgreSQL connections every ``interval`` seconds in a thread: to the
    run's database, and to the whole server (which other programs may share)."""

    def __init__(self, database_url: str, interval: float = 0.5) -> None:
        import psycopg2
        from sqlalchemy.engine import make_url

        url = make_url(database_url)
        self.database = url.database
        self.conn = psycopg2.connect(url.set(database="postgres").render_as_string(hide_password=False))
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute("SHOW max_connections")
            self.max_connections = int(cur.fetchone()[0])
        self.interval = interval
        self.peak_db = self.peak_server = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="pg-connections")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.conn.cursor() as cur:
                    cur.execute(
                        "SELECT count(*) FILTER (WHERE datname = %s), count(*) FROM pg_stat_activity "
                        "WHERE backend_type = 'client backend'",
                        (self.database,),
                    )
                    db, server = cur.fetchone()
            except Exception:  # noqa: BLE001 - e.g. the server is out of connections itself
                continue
            self.peak_db, self.peak_server = max(self.peak_db, db), max(self.peak_server, server)

    def start(self) -> None:
        self.peak_db = self.peak_server = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="pg-connections")
        self._stop.clear()
        self._thread.start()

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=5)
        return {
            "peak_this_database": self.peak_db,
            "peak_whole_server": self.peak_server,
            "max_connections": self.max_connections,
        }

    def close(self) -> None:
        self._stop.set()
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass
