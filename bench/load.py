"""Virtual users and the figures they record.

A phase runs ``users`` threads, each with its own keep-alive HTTP connection (a
``Client``), looping a scenario until the phase ends. The first ``warmup`` seconds are run but not recorded.
Every step records its latency when it succeeds and an error key (``"<status> <error
code>"`` or the exception's name) when it does not.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections import Counter, defaultdict
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit

# What a request can fail with below HTTP (refused, reset, timed out, a broken answer).
TRANSPORT_ERRORS = (OSError, http.client.HTTPException)


class Response:
    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers  # names in lower case
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)


class Client:
    """One virtual user's keep-alive HTTP/1.1 connection to one server.

    Built on ``http.client`` rather than ``requests``: the load generator shares the
    bench machine's two CPUs with the stack it measures, and ``requests`` spends several
    times the CPU per request. A request
    that fails below HTTP closes the connection; the next one opens a new one.
    """

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str, params: dict | None = None, headers: dict | None = None) -> Response:
        return self.request("GET", path + ("?" + urlencode(params) if params else ""), headers=headers)

    def post(self, path: str, json_body: Any = None, headers: dict | None = None) -> Response:
        return self.request("POST", path, json.dumps(json_body).encode() if json_body is not None else b"", headers)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Response:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        headers = {**({"Content-Type": "application/json"} if body is not None else {}), **(headers or {})}
        try:
            self._conn.request(method, self.prefix + path, body=body, headers=headers)
            answer = self._conn.getresponse()
            content = answer.read()
        except TRANSPORT_ERRORS:
            self.close()
            raise
        if answer.will_close:
            self.close()
        return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, content)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class StepFailed(Exception):
    """A step got an answer it did not expect; ``key`` says which."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def error_key(response: Response, note: str = "") -> str:
    code = ""
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            code = body["error"].get("code") or ""
    except ValueError:
        pass
    return " ".join(x for x in (str(response.status_code), code, note) if x)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    out = {"count": len(ordered)}
    for q in (50, 90, 99):
        v = percentile(ordered, q)
        out[f"p{q}_ms"] = round(v, 1) if v is not None else None
    out["max_ms"] = round(ordered[-1], 1) if ordered else None
    out["mean_ms"] = round(sum(ordered) / len(ordered), 1) if ordered else None
    return out


class Recorder:
    """Thread-safe store of latencies, errors and completions for one phase."""

    def __init__(self, record_from: float, record_until: float) -> None:
        self.record_from = record_from  # monotonic time the measured window opens
        self.record_until = record_until  # ... and closes
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, Counter] = defaultdict(Counter)
        self.completed = 0  # completions inside the window
        self.completed_outside = 0  # in the warm-up or after the window closed
        self.per_second: Counter = Counter()
        self.notes: Counter = Counter()
        self._lock = threading.Lock()

    def measuring(self, t: float) -> bool:
        return self.record_from <= t <= self.record_until

    def step(self, name: str, started: float, ended: float) -> None:
        if self.measuring(started):
            with self._lock:
                self.latencies[name].append((ended - started) * 1000)

    def error(self, name: str, key: str, started: float) -> None:
        if self.measuring(started):
            with self._lock:
                self.errors[name][key] += 1

    def complete(self, ended: float) -> None:
        with self._lock:
            if self.measuring(ended):
                self.completed += 1
                self.per_second[int(ended - self.record_from)] += 1
            else:
                self.completed_outside += 1

    def note(self, what: str) -> None:
        with self._lock:
            self.notes[what] += 1


class Iteration:
    """One pass of a scenario: times its steps, and knows which one runs if it fails."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.step = ""
        self.t0 = time.monotonic()

    def start(self, step: str) -> float:
        self.step, self.t0 = step, time.monotonic()
        return self.t0

    def done(self) -> float:
        """The running step succeeded: its latency is recorded; returns when it ended."""
        ended = time.monotonic()
        self.rec.step(self.step, self.t0, ended)
        return ended


def looped(one: Callable[[Client, Iteration], None]) -> Callable[[Client, Recorder, Callable[[], bool]], None]:
    """A scenario running ``one(client, iteration)`` until the phase ends. A step that
    fails (``StepFailed``, or below HTTP) is counted as that step's error, and the next
    pass starts 50 ms later."""

    def scenario(client: Client, rec: Recorder, running: Callable[[], bool]) -> None:
        while running():
            it = Iteration(rec)
            try:
                one(client, it)
            except StepFailed as failed:
                rec.error(it.step, failed.key, it.t0)
                time.sleep(0.05)
            except TRANSPORT_ERRORS as exc:
                rec.error(it.step, type(exc).__name__, it.t0)
                time.sleep(0.05)

    return scenario


def run_phase(
    users: int,
    duration: float,
    warmup: float,
    scenario: Callable[[Client, Recorder, Callable[[], bool]], None],
    base_url: str,
    stop: threading.Event,
    label: str = "",
) -> Recorder:
    """Run ``scenario(client, recorder, running)`` once per user thread, each with its
    own ``Client`` of ``base_url``; ``running()``
    turns False when the phase is over (the current iteration then finishes)."""
    start = time.monotonic()
    recorder = Recorder(start + warmup, start + warmup + duration)
    end = recorder.record_until

    def running() -> bool:
        return not stop.is_set() and time.monotonic() < end

    def user() -> None:
        client = Client(base_url)
        try:
            scenario(client, recorder, running)
        except Exception as exc:  # noqa: BLE001 - a crashed user is reported, not hidden
            recorder.note(f"virtual user crashed: {exc!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=user, daemon=True, name=f"{label}-vu{i}") for i in range(users)]
    for t in threads:
        t.start()
    last_print = start
    try:
        while any(t.is_alive() for t in threads):
            time.sleep(0.25)
            now = time.monotonic()
            if label and now - last_print >= 5 and now < end:
                print(
                    f"  {label}: {now - start:5.1f}s of {warmup + duration:.0f}s, "
                    f"{recorder.completed} completed in the measured window so far",
                    flush=True,
                )
                last_print = now
            if now > end + 60:  # iterations still running a minute after the end: give up on them
                recorder.note("virtual users still busy 60 s after the phase ended")
                break
    except BaseException:
        stop.set()
        raise
    return recorder
