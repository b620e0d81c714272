"""The benchmarks' scenario loop: each step's latency, and a failure counted against
the step that was running."""

import time

from bench.load import Recorder, StepFailed, looped


def test_a_pass_records_its_steps_and_a_failure_counts_against_the_running_step():
    now = time.monotonic()
    rec = Recorder(now - 1, now + 60)
    passes = []

    def one(client, it):
        passes.append(client)
        it.start("first")
        it.done()
        it.start("second")
        if len(passes) == 2:
            raise StepFailed("500 boom")
        if len(passes) == 3:
            raise ConnectionResetError()
        it.rec.complete(it.done())

    looped(one)("client", rec, lambda: len(passes) < 4)
    assert passes == ["client"] * 4
    assert len(rec.latencies["first"]) == 4 and len(rec.latencies["second"]) == 2
    assert rec.errors == {"second": {"500 boom": 1, "ConnectionResetError": 1}}
    assert rec.completed == 2
