"""The status check's words: a service with no instance is named once, not once per
queue (the check itself runs on the real RabbitMQ in tests/integration/test_status.py)."""

from shared.status import Connections, QueueState, expected_queues, problems


def test_a_service_with_no_instance_is_named_once():
    # verify's queues: 2 messages each, no consumer; every other queue consumed
    states = [QueueState(name, owner, what, 2 if owner == "verify" else 0, 0 if owner == "verify" else 1)
              for name, owner, what in expected_queues()]
    verify_queues = sum(1 for q in states if q.service == "verify")
    assert problems([], states, 0) == [
        f"no verify instance is running: nothing consumes its {verify_queues} queues "
        f"({2 * verify_queues} message(s) waiting)"
    ]


def test_connections_need_a_look_from_nine_tenths_of_what_postgresql_allows():
    consumed = [QueueState(name, owner, what, 0, 1) for name, owner, what in expected_queues()]
    assert problems([], consumed, 0, Connections(allowed=97, in_use=87, here={"tuantibu-member": 12})) == []
    assert problems([], consumed, 0, Connections(allowed=97, in_use=88, here={})) == [
        "PostgreSQL has 88 of the 97 connections it allows open: one more service instance may be refused "
        "(too many clients). Raise max_connections or lower DB_POOL_SIZE (README: PostgreSQL connections)"
    ]
