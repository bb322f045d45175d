"""Prometheus metrics of one daemon, in a registry of its own (so tests can run several)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.mentions = Counter(
            "brandmon_mentions_ingested",
            "Mentions stored, by brand and source.",
            ["brand", "source"],
            registry=self.registry,
        )
        self.poll_seconds = Histogram(
            "brandmon_poll_duration_seconds",
            "Time one poll of a source took.",
            ["source"],
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.poll_errors = Counter(
            "brandmon_poll_errors",
            "Failed polls, by source and kind (timeout, http_5xx, malformed, …).",
            ["source", "kind"],
            registry=self.registry,
        )
        self.poll_truncated = Counter(
            "brandmon_poll_truncated",
            "Posts that may be missing because a poll stopped paging early (max_pages or the "
            "source's rate limit), by source.",
            ["source"],
            registry=self.registry,
        )
        self.last_success = Gauge(
            "brandmon_source_last_success_timestamp_seconds",
            "Unix time of each source's last successful poll.",
            ["source"],
            registry=self.registry,
        )
        self.level = Gauge(
            "brandmon_brand_level",
            "Current level per brand: 0 none, 1 watch, 2 warning, 3 crisis.",
            ["brand"],
            registry=self.registry,
        )
        self.outbox = Gauge(
            "brandmon_outbox_alerts",
            "Alerts in the outbox by status (pending, sent, failed, dropped) and sink.",
            ["status", "sink"],
            registry=self.registry,
        )
        self.alert_failures = Counter(
            "brandmon_alert_delivery_failures",
            "Failed alert deliveries, by sink.",
            ["sink"],
            registry=self.registry,
        )
        self._outbox_labels: set[tuple[str, str]] = set()

    def set_outbox(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Publish the outbox's counts per (status, sink).  A pair no longer counted reads 0,
        not its last count: failed alerts retried or dropped must not look failed for ever."""
        for labels in self._outbox_labels - counts.keys():
            self.outbox.labels(*labels).set(0)
        for labels, count in counts.items():
            self.outbox.labels(*labels).set(count)
        self._outbox_labels |= counts.keys()
