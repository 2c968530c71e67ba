"""The web worker tunes its garbage collector once its app is loaded, and reports every pass."""

from __future__ import annotations

import re
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.stack import Stack


def young_passes(stack: Stack) -> float:
    """admarket_gc_pause_seconds_count{generation="0"} on /metrics (0 while absent)."""
    body = stack.api().get("/metrics").text
    samples = (s for family in text_string_to_metric_families(body) for s in family.samples)
    for sample in samples:
        if sample.name == "admarket_gc_pause_seconds_count" and sample.labels["generation"] == "0":
            return sample.value
    return 0.0


@pytest.mark.one_backend
def test_the_worker_freezes_start_up_objects_and_reports_collector_passes(stack: Stack) -> None:
    """gunicorn's post_worker_init applies the settings; the clock's passes reach /metrics."""
    stack.start(web=1, workers=0)
    said = r"gc: \d{5,} start-up objects frozen; thresholds 700,10,2400; young passes every 0.25 s"
    assert re.search(said, stack.logs())

    user = stack.api().register()
    # The first socket starts the once-a-second sweep that writes this process's metrics.
    stack.live(user.access_token)
    deadline = time.monotonic() + 30
    while young_passes(stack) == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert young_passes(stack) > 0
