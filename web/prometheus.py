"""`/metrics` for Prometheus: platform-wide figures, read from Redis and the database per scrape.

Every web process answers with the same platform-wide values (connections summed over every
web process, counters written by every worker), so scrape one of them, or aggregate with
`max without (instance)`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from core import metrics
from core.db import session_scope
from core.services.jobs.status import job_statuses
from web.presence import Presence

log = logging.getLogger(__name__)
PREFIX = "admarket_"
bp = Blueprint("metrics", __name__)


class PlatformCollector(Collector):
    """Builds every family at scrape time; a part whose source is down is left out, and said so."""

    def __init__(self, presence: Presence) -> None:
        self.presence = presence

    def collect(self) -> Iterator[Metric]:
        """Connections, stored counters and histograms, jobs' last successes, scrape health."""
        up = GaugeMetricFamily(
            PREFIX + "metrics_source_up",
            "Whether a source of these metrics answered",
            labels=["source"],
        )
        for source, part in (
            ("redis_presence", self._connections),
            ("redis_counters", self._stored),
            ("database_jobs", self._jobs),
        ):
            try:
                yield from list(part())
                up.add_metric([source], 1)
            except Exception as exc:  # a scrape must still answer with what it could read
                log.warning("metrics source %s failed: %s", source, exc)
                up.add_metric([source], 0)
        yield up

    def _connections(self) -> Iterator[Metric]:
        counts = self.presence.counts()
        yield GaugeMetricFamily(
            PREFIX + "websocket_connections",
            "Open Socket.IO connections across every web process",
            value=counts["connections"],
        )
        yield GaugeMetricFamily(
            PREFIX + "websocket_users",
            "Distinct users with an open Socket.IO connection across every web process",
            value=counts["users"],
        )

    def _stored(self) -> Iterator[Metric]:
        counters, hists = metrics.store().read()
        families = {
            name: CounterMetricFamily(PREFIX + name, fam.help, labels=list(fam.labels))
            for name, fam in metrics.COUNTERS.items()
        }
        for field, value in sorted(counters.items()):
            name, labels = metrics.parse_field(field)
            family = families.get(name)
            if family is not None:
                family.add_metric([labels.get(k, "") for k in metrics.COUNTERS[name].labels], value)
        yield from families.values()
        for name, fam in metrics.HISTOGRAMS.items():
            buckets: dict[tuple[str, ...], dict[str, float]] = defaultdict(
                lambda: defaultdict(float)
            )
            totals: dict[tuple[str, ...], float] = defaultdict(float)
            for field, value in hists.items():
                field_name, labels = metrics.parse_field(field)
                key = tuple(labels.get(k, "") for k in fam.labels)
                if field_name == name:
                    buckets[key][labels["le"]] += value
                elif field_name == name + "_sum":
                    totals[key] += value
            histogram = HistogramMetricFamily(PREFIX + name, fam.help, labels=list(fam.labels))
            # A family without labels shows its one series even before any observation.
            for key in sorted(buckets) or ([] if fam.labels else [()]):
                cumulated = metrics.cumulative(buckets[key], fam.buckets)
                histogram.add_metric(list(key), cumulated, sum_value=totals[key])
            yield histogram

    def _jobs(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            PREFIX + "job_last_success_timestamp_seconds",
            "When each scheduled job last succeeded (Unix time)",
            labels=["job"],
        )
        with session_scope() as session:
            statuses = job_statuses(session, current_app.config["SETTINGS"])
        for job in statuses:
            if job["last_success_at"]:
                when = datetime.fromisoformat(job["last_success_at"].replace("Z", "+00:00"))
                family.add_metric([job["name"]], when.timestamp())
        yield family


@bp.route("/metrics")
def scrape() -> Response:
    """The Prometheus text exposition of the platform's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlatformCollector(current_app.extensions["presence"]))
    return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
