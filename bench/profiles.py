"""The sizes of one benchmark invocation: the full run and the quick check."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """How many clients, messages, seconds and repetitions each figure uses."""

    name: str
    reps: int
    swarm_procs: int
    b1_clients: int
    b1_hold_seconds: float
    b2_sizes: tuple[int, ...]
    b2_messages: dict[int, int]
    b3_clients: int
    b3_burst: int
    b3_half_seconds: float
    b4_clients: int
    b4_rate: int
    b4_seconds: float
    b4_probe_rates: tuple[int, ...]
    b4_probe_seconds: float
    b4_sustain_seconds: float
    b5_emails: int
    b5_runs: int
    limit_seconds: float
    limit_burst: int
    # B1 on a server of its own (a clean memory baseline), or last on the shared one (quicker).
    b1_own_server: bool = True


FULL = Profile(
    name="full",
    reps=3,
    swarm_procs=4,
    b1_clients=10_000,
    b1_hold_seconds=3,
    b2_sizes=(5000, 1000),
    b2_messages={5000: 10, 1000: 30},
    b3_clients=2000,
    b3_burst=10_000,
    b3_half_seconds=5,
    b4_clients=2000,
    b4_rate=200,
    b4_seconds=5,
    b4_probe_rates=(25, 50, 75, 100, 125, 150, 175, 250, 300, 500, 750, 1000, 1500, 2000),
    b4_probe_seconds=4,
    b4_sustain_seconds=60,
    b5_emails=2000,
    b5_runs=3,
    limit_seconds=3,
    limit_burst=50_000,
)

QUICK = Profile(
    name="quick",
    reps=1,
    swarm_procs=2,
    b1_clients=200,
    b1_hold_seconds=0.5,
    b2_sizes=(100, 200),
    b2_messages={200: 5, 100: 10},
    b3_clients=100,
    b3_burst=1000,
    b3_half_seconds=1,
    b4_clients=100,
    b4_rate=40,
    b4_seconds=1,
    b4_probe_rates=(80,),
    b4_probe_seconds=1,
    b4_sustain_seconds=1,
    b5_emails=200,
    b5_runs=1,
    limit_seconds=0.5,
    limit_burst=2000,
    b1_own_server=False,
)

PROFILES = {"full": FULL, "quick": QUICK}
