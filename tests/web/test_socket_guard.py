"""The socket guard's arithmetic: the event budget and when a queue is worth measuring."""

from __future__ import annotations

from types import SimpleNamespace

from engineio import packet

from web.socket_guard import EventBudget, queued_bytes, worth_measuring


def test_a_burst_then_the_rate() -> None:
    """A full bucket lets `burst` events through at once, then `rate` a second."""
    budget = EventBudget(burst=5, now=0.0)
    assert [budget.take(0.0, rate=2, burst=5) for _ in range(6)] == [True] * 5 + [False]
    assert budget.take(0.5, rate=2, burst=5)  # half a second buys one event
    assert not budget.take(0.5, rate=2, burst=5)
    assert [budget.take(100.0, rate=2, burst=5) for _ in range(6)] == [True] * 5 + [False]


def test_a_ping_every_five_seconds_never_runs_out() -> None:
    """The inbox page's own client (a ping every 5 s) stays far inside the default budget."""
    budget = EventBudget(burst=50, now=0.0)
    assert all(budget.take(t * 5.0, rate=10, burst=50) for t in range(1000))


def test_queues_are_measured_rarely() -> None:
    """Short queues never; then at powers of two and every 64 packets."""
    measured = [n for n in range(200) if worth_measuring(n)]
    assert measured == [4, 8, 16, 32, 64, 128, 192]


def test_queued_bytes_adds_up_the_packets() -> None:
    """The size of every message waiting in an engine.io socket's queue."""
    queue = SimpleNamespace(
        queue=[
            packet.Packet(packet.MESSAGE, data="x" * 10),
            packet.Packet(packet.MESSAGE, data="y"),
        ]
    )
    assert queued_bytes(SimpleNamespace(queue=queue)) == 11
    assert queued_bytes(SimpleNamespace(queue=SimpleNamespace(queue=[]))) == 0
