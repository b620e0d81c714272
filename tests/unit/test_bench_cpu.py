"""The join benchmark's CPU accounting: per join, by process, and in reference requests."""

from bench.join import cpu_per_join


def phase(cores: dict) -> dict:
    return {"cpus": 2, "processes": {name: {"cores": c} for name, c in cores.items()}}


def test_a_join_is_counted_in_cpu_and_in_reference_requests():
    joins = phase({"verify": 0.4, "member": 0.2, "bench-client": 0.3, "other (not this run)": 0.1})
    reference = phase({"gateway": 0.6, "org": 0.4, "bench-client": 0.5})
    cost = cpu_per_join(joins, 10.0, reference, 500.0)
    # the load generator and other programs are not the stack's cost
    assert cost["by_process"] == {"verify": 40.0, "member": 20.0}
    assert cost["total_ms"] == 60.0 and cost["joins_per_s_at_this_cost"] == 33.3
    assert cost["reference_request_ms"] == 2.0 and cost["join_in_reference_requests"] == 30.0


def test_without_a_reference_phase_there_is_no_count_in_reference_requests():
    cost = cpu_per_join(phase({"verify": 0.5}), 10.0)
    assert cost["total_ms"] == 50.0 and cost["join_in_reference_requests"] is None
    assert cpu_per_join(phase({"verify": 0.5}), 0) is None
