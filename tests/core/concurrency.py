"""Run actions in threads released at the same moment, collecting results or exceptions."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

Action = Callable[[threading.Barrier], Any]


def race(*actions: Action, timeout: float = 60.0) -> list[Any]:
    """Each action gets a shared barrier to wait on; returns each result or raised exception."""
    barrier = threading.Barrier(len(actions))
    with ThreadPoolExecutor(max_workers=len(actions)) as pool:
        futures = [pool.submit(action, barrier) for action in actions]
        outcomes: list[Any] = []
        for future in futures:
            error = future.exception(timeout=timeout)
            outcomes.append(error if error is not None else future.result())
    return outcomes
