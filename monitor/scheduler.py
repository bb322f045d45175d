"""Polling, each failure contained to its own source.

A failing source backs off (Retry-After when the server gives one, else exponential with
jitter, capped) by recording ``next_poll`` in its state.  On SQLite (one instance) each source
has an APScheduler job at its interval, which skips polls that are not due, so a restart honours
the back-off too.  On PostgreSQL, shared by several instances, the schedule is the database's:
every second each instance starts the polls whose ``next_poll`` has come by the database's clock,
and a source's advisory lock (``monitor.locks``) lets one instance poll it; the poll sets the next
one an interval after its start, so each source is polled once per interval by all instances
together, however staggered their starts, and a killed instance's polls are taken over at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import OperationalError

from alerts.outbox import OutboxSender, count_failed
from alerts.sinks import build_sinks
from alerts.slack_actions import PATH as ACTIONS_PATH
from alerts.slack_actions import ActionServer
from connectors.base import Connector, SourceError
from connectors.http import make_client
from connectors.registry import build_connector
from monitor.backoff import backoff as exponential_backoff
from monitor.config import (
    Config,
    ConfigError,
    SourceConfig,
    WebhookSource,
    address,
    load_config,
)
from monitor.health import HealthServer
from monitor.locks import WorkLocks, work_locks
from monitor.metrics import Metrics
from monitor.model import Cursor, MentionRow, RawMention, SourceState, to_utc, utcnow
from monitor.pipeline import Pipeline, PipelineReport
from monitor.plugins import PUSH_TYPES
from monitor.push import WebhookServer
from monitor.service import notify, watchdog_interval
from monitor.serving import BackgroundServer
from monitor.storage import Storage, cursor_of, instance_id
from monitor.watcher import Watcher

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BACKOFF = timedelta(hours=1)
DETECT_EVERY = timedelta(seconds=30)  # at most; twice per bucket for shorter buckets.  It
# bounds how soon a brand or sink whose instance died is judged or delivered by another.
PRUNE_EVERY = timedelta(hours=1)
STOP_TIMEOUT = 30.0
STORAGE_PATIENCE = timedelta(minutes=2)
DISPATCH_EVERY = timedelta(seconds=1)
"""How often an instance sharing PostgreSQL looks for sources due (and so how late a poll starts
at most, or a killed instance's poll is taken over)."""


@dataclass(slots=True)
class PollOutcome:
    source: str
    ok: bool
    skipped: bool = False
    found: int = 0
    stored: int = 0
    error: str | None = None
    seconds: float = 0.0
    catch_up: bool = False
    """The poll stopped paging at ``max_pages`` with posts left: poll again soon."""
    not_modified: bool = False
    """The source had nothing new (HTTP 304)."""


CATCH_UP = timedelta(seconds=30)
"""How soon a poll that stopped at ``max_pages`` with posts left is followed by another."""
SUMMARY_EVERY = timedelta(minutes=5)
"""How often the daemon logs its polls' summary (each unchanged feed is logged at DEBUG)."""


@dataclass(slots=True)
class PollTally:
    """Polls counted since the last summary line."""

    changed: int = 0
    not_modified: int = 0
    failed: int = 0
    skipped: int = 0
    stored: int = 0

    def add(self, outcome: PollOutcome) -> None:
        if outcome.skipped:
            self.skipped += 1
        elif not outcome.ok:
            self.failed += 1
        elif outcome.not_modified:
            self.not_modified += 1
        else:
            self.changed += 1
        self.stored += outcome.stored

    def log(self, what: str, seconds: float) -> None:
        """Log the counts in one line (none if nothing was polled), and start again."""
        if self.changed or self.not_modified or self.failed or self.skipped:
            log.info(
                "%s changed=%d not_modified=%d failed=%d skipped=%d stored=%d seconds=%.1f",
                what,
                self.changed,
                self.not_modified,
                self.failed,
                self.skipped,
                self.stored,
                seconds,
            )
        self.changed = self.not_modified = self.failed = self.skipped = self.stored = 0


def _day_chart(config: Config, storage: Storage, brand: str) -> bytes:
    """``monitor.report.day_chart``, imported (with Pillow) when a first chart is drawn."""
    from monitor.report import day_chart

    return day_chart(config, storage, brand)


def backoff(interval: timedelta, failures: int, retry_after: float | None = None) -> timedelta:
    """How long a source rests after its ``failures``-th consecutive failure."""
    if retry_after is not None:
        return min(timedelta(seconds=retry_after), MAX_BACKOFF * 24)
    return exponential_backoff(interval, failures, MAX_BACKOFF)


def _backing_off(state: SourceState | None, interval: timedelta) -> bool:
    """Whether a source is still resting: a failing one, or a healthy one whose rate-limit
    window is spent (its next poll is set beyond its interval).  Otherwise a healthy source
    polls at every interval."""
    if state is None or state.next_poll is None:
        return False
    next_poll = to_utc(state.next_poll)
    assert next_poll is not None
    if next_poll <= utcnow():
        return False
    if state.consecutive_failures:
        return True
    last = to_utc(state.last_poll)
    return last is not None and next_poll - last > interval * 1.5


class PollSaver:
    """Saves successful polls' cursors by group commit: each poll still waits until its own
    cursor is saved, but the polls that finish while one save runs are saved together by the
    next, in one transaction and one thread hop instead of one each (a cycle of unchanged
    feeds is little more than these saves)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._waiting: list[tuple[tuple[str, Cursor, datetime | None], asyncio.Future[None]]] = []
        self._saving: asyncio.Task[None] | None = None

    async def save(self, source: str, cursor: Cursor, next_poll: datetime | None) -> None:
        saved = asyncio.get_running_loop().create_future()
        self._waiting.append(((source, cursor, next_poll), saved))
        if self._saving is None:
            self._saving = asyncio.create_task(self._save_waiting())
        await saved

    async def _save_waiting(self) -> None:
        batch: list[asyncio.Future[None]] = []
        try:
            while self._waiting:
                polls = [poll for poll, _ in self._waiting]
                batch = [saved for _, saved in self._waiting]
                self._waiting = []
                try:
                    await asyncio.to_thread(self.storage.record_poll_successes, polls)
                except Exception as exc:  # each poll fails as its own save would have
                    _settle(batch, exc)
                else:
                    _settle(batch, None)
        finally:  # cancelled with its loop: so are the polls still waiting
            for saved in batch + [saved for _, saved in self._waiting]:
                saved.cancel()
            self._waiting, self._saving = [], None


def _settle(waiting: list[asyncio.Future[None]], error: Exception | None) -> None:
    for saved in waiting:
        if saved.done():
            continue
        if error is None:
            saved.set_result(None)
        else:
            saved.set_exception(error)


class SourcePoller:
    """Polls one source and feeds what it found through the pipeline."""

    def __init__(
        self,
        source: SourceConfig,
        connector: Connector,
        pipeline: Pipeline,
        storage: Storage,
        metrics: Metrics,
        owner: str,
        *,
        locks: WorkLocks | None = None,
        saver: PollSaver | None = None,
    ) -> None:
        """``locks`` and ``saver``: the instance's, shared by its pollers (default: their own)."""
        self.source = source
        self.connector = connector
        self.pipeline = pipeline
        self.storage = storage
        self.metrics = metrics
        self.locks = locks or work_locks(storage, owner)
        self.saver = saver or PollSaver(storage)

    async def _store(self, mentions: list[RawMention]) -> tuple[PipelineReport, list[MentionRow]]:
        """Run the pipeline, waiting out a locked or unreachable database for a while.

        If it stays unavailable the error propagates: the poll fails without saving the new
        cursor, so the next poll fetches the same items again and nothing is dropped.  A
        mention the database refuses for its values is not such an error: the pipeline skips
        and counts it, and the cursor moves past it (it would be refused at every poll).
        """
        delay, waited = 1.0, 0.0
        while True:
            try:
                return await asyncio.to_thread(self.pipeline.process, mentions)
            except OperationalError as exc:
                if waited >= STORAGE_PATIENCE.total_seconds():
                    raise
                log.warning(
                    "storage unavailable source=%s retry_in=%.0fs error=%s",
                    self.source.name,
                    delay,
                    type(exc.orig).__name__,
                )
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 30.0)

    def _due(self, state: SourceState | None, now: datetime) -> bool:
        """Whether the source's poll has come: on PostgreSQL when its ``next_poll`` has (by
        the database's clock); on SQLite, where a job polls it at every interval, unless it is
        backing off or was polled within the last half interval (before a restart)."""
        next_poll = None if state is None else to_utc(state.next_poll)
        if self.storage.shared:
            return next_poll is None or next_poll <= now
        if _backing_off(state, self.source.interval):
            return False
        last = None if state is None else to_utc(state.last_poll)
        return last is None or last <= now - self.source.interval / 2

    async def poll(
        self,
        client: httpx.AsyncClient,
        *,
        force: bool = False,
        states: Mapping[str, SourceState] | None = None,
    ) -> PollOutcome:
        """Poll unless another instance holds the source's lock or the poll is not due
        (``force`` ignores the latter).

        On PostgreSQL the source's lock is taken first and the state read after it, so a poll
        another instance saved just before freeing the lock is seen, and the source is not
        polled twice.  On SQLite (one instance) there is no lock at all, and ``states`` read
        for many sources at once spare reading the source's (absent: never polled).
        """
        name = self.source.name
        lock = f"source:{name}"
        if states is not None and not self.storage.shared:
            state, now = states.get(name), utcnow()
        else:
            claimed = await asyncio.to_thread(self._claim, lock)
            if claimed is None:
                return PollOutcome(name, ok=True, skipped=True)
            state, now = claimed
        try:
            if not force and not self._due(state, now):
                return PollOutcome(name, ok=True, skipped=True)
            return await self._poll(client, state, now)
        finally:  # after the poll's result is saved: the next holder reads it
            if self.storage.shared:
                await asyncio.to_thread(self.locks.free, lock)

    def _claim(self, lock: str) -> tuple[SourceState | None, datetime] | None:
        """Take the source's lock on PostgreSQL (``None`` if another instance holds it), then
        read its state and the time: one trip to a thread for both."""
        if not self.storage.shared:
            return self.storage.source_state_now(self.source.name)
        if not self.locks.take(lock):
            return None
        try:
            return self.storage.source_state_now(self.source.name)
        except BaseException:
            self.locks.free(lock)
            raise

    async def _poll(
        self, client: httpx.AsyncClient, state: SourceState | None, now: datetime
    ) -> PollOutcome:
        """Poll; the next poll is set from ``now``, when this one began (by the database's
        clock on PostgreSQL), so polls begin an interval apart whoever makes them."""
        name = self.source.name
        started = time.monotonic()
        try:
            result = await self.connector.poll(client, cursor_of(state))
        except SourceError as exc:
            seconds = time.monotonic() - started
            failures = (state.consecutive_failures if state else 0) + 1
            rest = backoff(self.source.interval, failures, exc.retry_after)
            wait = timedelta(seconds=seconds) + rest
            if self.storage.shared:  # the database's schedule: never sooner than the interval
                wait = max(wait, self.source.interval)
            message = f"{exc.kind}: {exc}"
            await asyncio.to_thread(
                self.storage.record_poll_failure,
                name,
                message,
                next_poll=now + wait,
            )
            self.metrics.poll_seconds.labels(name).observe(seconds)
            self.metrics.poll_errors.labels(name, exc.kind).inc()
            log.warning(
                "poll failed source=%s error=%s failures=%d retry_in=%ds",
                name,
                message,
                failures,
                rest.total_seconds(),
            )
            return PollOutcome(name, ok=False, error=message, seconds=seconds)
        # nothing new (a 304, an empty page): no pipeline, no transaction but the state's
        report, new = PipelineReport(), []
        if result.mentions:
            report, new = await self._store(result.mentions)
        catch_up = bool(result.truncated) and result.rest is None
        wait = max(self.source.interval, timedelta(seconds=result.rest or 0))
        if catch_up and self.storage.shared:  # the database's schedule reads on soon
            wait = min(CATCH_UP, self.source.interval)
        await self.saver.save(name, result.cursor, now + wait)
        outcome = PollOutcome(
            name,
            ok=True,
            found=report.received,
            stored=report.stored,
            seconds=time.monotonic() - started,
            catch_up=catch_up,
            not_modified=result.not_modified,
        )
        if result.truncated:
            self.metrics.poll_truncated.labels(name).inc(result.truncated)
        self.metrics.poll_seconds.labels(name).observe(outcome.seconds)
        self.metrics.last_success.labels(name).set(time.time())
        for row in new:
            self.metrics.mentions.labels(row["brand"], name).inc()
        # an unchanged feed is the common case: counted in the cycle's summary, detailed at DEBUG
        log.log(
            logging.DEBUG if result.not_modified else logging.INFO,
            "poll ok source=%s found=%d stored=%d not_stored=%d clamped=%d not_modified=%s"
            " seconds=%.2f",
            name,
            outcome.found,
            outcome.stored,
            report.failed,
            report.clamped,
            result.not_modified,
            outcome.seconds,
        )
        return outcome


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` (the daemon's ``run_forever`` or ``run_once``) to its end on a new event
    loop: uvloop's where it is installed (it is on Linux and macOS, not Windows), asyncio's
    otherwise.  A poll spends most of its time in the event loop and the HTTP client; uvloop's
    loop took a fifth less CPU time a feed in a cycle of 1,000 feeds answering 304."""
    try:
        import uvloop
    except ImportError:
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


class Daemon:
    """Owns the storage, the pipeline, one poller per enabled source, the detection of every
    brand and the delivery of alerts; reloads its config on SIGHUP and reports its health."""

    def __init__(
        self,
        config: Config,
        storage: Storage,
        *,
        config_path: Path | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.storage = storage
        self.config_path = config_path
        self.metrics = metrics or Metrics()
        self.owner = instance_id()
        self.locks = work_locks(storage, self.owner)
        # SQLite's leases outlive a killed process (PostgreSQL's locks end with it)
        if not storage.shared and (freed := storage.release_orphans(self.owner)):
            log.info("freed %d lease(s) left by a stopped instance on this host", freed)
        self._polling: set[str] = set()
        self._alerting = asyncio.Lock()
        self._last_tick: float | None = None
        self._tally = PollTally()
        self._tally_since = time.monotonic()
        self._endpoints: list[BackgroundServer] = []
        self._saver = PollSaver(storage)
        self._apply(config)

    def _apply(self, config: Config) -> None:
        self.config = config
        self._new_slots()
        self.pipeline = Pipeline(config, self.storage)
        self.watcher = Watcher(config, self.storage, locks=self.locks)
        self.sender = OutboxSender(
            self.storage,
            build_sinks(config, self.storage),
            locks=self.locks,
            chart=functools.partial(_day_chart, config, self.storage),
        )
        self.pollers = [
            SourcePoller(
                source,
                build_connector(source),
                self.pipeline,
                self.storage,
                self.metrics,
                self.owner,
                locks=self.locks,
                saver=self._saver,
            )
            for source in config.sources
            if source.enabled and source.type not in PUSH_TYPES
        ]
        self.pushed = [
            source
            for source in config.sources
            if source.enabled and isinstance(source, WebhookSource)
        ]

    @property
    def _detect_every(self) -> timedelta:
        buckets = [self.config.thresholds_for(b).bucket for b in self.config.brands]
        return min(DETECT_EVERY, min(buckets) / 2)

    def reload(self) -> bool:
        """Re-read and apply the config file; an invalid one keeps the running config."""
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            log.error("reload failed, keeping the running config: %s", exc)
            return False
        if unset := config.unset_source_secrets():
            log.error("reload failed, keeping the running config: %s", "; ".join(unset))
            return False
        if config.storage.url != self.config.storage.url:
            log.warning("reload: [storage] changes take effect after a restart")
            config = config.model_copy(update={"storage": self.config.storage})
        self._stop_push()
        self._apply(config)
        self._start_push()
        log.info("config reloaded sources=%d brands=%d", len(self.pollers), len(config.brands))
        return True

    def _start_push(self) -> None:
        """Open an endpoint per push source; one that cannot open is logged, not fatal."""
        for source in self.pushed:
            try:
                server = WebhookServer(source, self._ingest_pushed(source.name))
            except (ValueError, OSError) as exc:
                log.error("push endpoint not started source=%s: %s", source.name, exc)
                self.storage.record_poll_failure(source.name, f"listen: {exc}")
                continue
            server.start()
            self._endpoints.append(server)
        self._start_slack_actions()
        self._start_console()

    def _start_slack_actions(self) -> None:
        """Answer Slack's button clicks, when ``[alerts.slack] interactivity`` is set."""
        slack = self.config.alerts.section("slack")
        if slack is None or slack.interactivity is None or "slack" not in self.config.alerts.sinks:
            return
        secret = os.environ.get(slack.signing_secret_env or "", "")
        if not secret:
            log.error(
                "slack buttons not served: environment variable %s (the app's signing secret) "
                "is not set",
                slack.signing_secret_env,
            )
            return
        try:
            server = ActionServer(*address(slack.interactivity), secret, self.storage)
        except OSError as exc:
            log.error("slack buttons not served on %s: %s", slack.interactivity, exc)
            return
        server.start()
        log.info("slack buttons answered url=http://%s:%d%s", *server.address, ACTIONS_PATH)
        self._endpoints.append(server)

    def _start_console(self) -> None:
        """Serve the web console, when ``[console]`` is set; one that cannot open is logged."""
        console = self.config.console
        if console is None:
            return
        # imported only when configured: its pages load jinja2, Pillow and the scorer
        from monitor.console import ConsoleServer, Pages

        try:
            server = ConsoleServer(console, Pages(self.config, self.storage))
        except (ValueError, OSError) as exc:
            log.error("web console not served on %s:%d: %s", console.bind, console.port, exc)
            return
        server.start()
        self._endpoints.append(server)

    def _stop_push(self) -> None:
        for server in self._endpoints:
            server.stop()
        self._endpoints = []

    def _ingest_pushed(self, source: str) -> Callable[[list[RawMention]], PipelineReport]:
        """Store what a push endpoint received: one request in one transaction, whole or not
        at all (any error is raised to the endpoint, and nothing of the request is stored)."""

        def ingest(mentions: list[RawMention]) -> PipelineReport:
            report, new = self.pipeline.process(mentions, atomic=True)
            self.storage.record_poll_success(source, Cursor())
            self.metrics.last_success.labels(source).set(time.time())
            for row in new:
                self.metrics.mentions.labels(row["brand"], source).inc()
            return report

        return ingest

    async def run_once(self) -> list[PollOutcome]:
        """Poll every source once, now, whatever its back-off says; then detect and alert."""
        self._new_slots()
        started = time.monotonic()
        states = None
        if not self.storage.shared:  # one instance: every state in one read, no lock to take
            names = [p.source.name for p in self.pollers]
            states = await asyncio.to_thread(self.storage.source_states, names)
        async with self._client() as client:
            polls = (self._limited(p.poll(client, force=True, states=states)) for p in self.pollers)
            outcomes = list(await asyncio.gather(*polls))
        tally = PollTally()
        for outcome in outcomes:
            tally.add(outcome)
        tally.log(f"poll cycle sources={len(outcomes)}", time.monotonic() - started)
        await self.detect_and_alert()
        return outcomes

    async def detect_and_alert(self) -> None:
        """Judge the buckets that closed and deliver what is due in the outbox."""
        self._last_tick = time.monotonic()
        async with self._alerting:
            pages = await asyncio.to_thread(self.watcher.judge, utcnow())
            report = await asyncio.to_thread(self.sender.deliver_due)
            counts = await asyncio.to_thread(self.storage.outbox_counts)
        for brand, level in self.watcher.levels().items():
            self.metrics.level.labels(brand).set(int(level))
        self.metrics.set_outbox(counts)
        for error in report.errors:
            self.metrics.alert_failures.labels(error.split(":", 1)[0]).inc()
        if pages or report.sent or report.failed or report.dead:
            log.info(
                "alerts pages=%d sent=%d failed=%d undeliverable=%d waiting=%d",
                pages,
                report.sent,
                report.failed,
                report.dead,
                report.held,
            )

    async def prune(self) -> None:
        """Delete mentions past ``[storage] retention``, in small batches."""
        retention = self.config.storage.retention
        if retention is None:
            return
        deleted = await asyncio.to_thread(self.storage.prune, utcnow() - retention)
        if deleted:
            log.info("pruned mentions=%d older_than_days=%d", deleted, retention.days)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy when storage answers and the scheduler ticked recently.

        The report also counts the alerts that a sink refused for good (``alerts_failed``,
        ``None`` when storage does not answer): they need the operator, not a restart, so they
        do not make the daemon unhealthy.
        """
        storage_ok = self.storage.ping()
        age = None if self._last_tick is None else time.monotonic() - self._last_tick
        scheduler_ok = age is not None and age < 3 * self._detect_every.total_seconds()
        sources: dict[str, Any] = {}
        failed = None
        if storage_ok:
            failed = count_failed(self.storage)
            names = [p.source.name for p in self.pollers] + [s.name for s in self.pushed]
            for name in names:
                state = self.storage.source_state(name)
                sources[name] = {
                    "last_success": state.last_success if state else None,
                    "consecutive_failures": state.consecutive_failures if state else 0,
                    "last_error": state.last_error if state else None,
                }
        report = {
            "storage": storage_ok,
            "scheduler": {"ok": scheduler_ok, "last_tick_seconds_ago": age},
            "sources": sources,
            "alerts_failed": failed,
        }
        return storage_ok and scheduler_ok, report

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Poll each source at its interval until SIGTERM/SIGINT (or ``stop`` is set).

        SIGHUP reloads the config between polls; in-flight polls finish first, as they do on
        SIGTERM (bounded by ``STOP_TIMEOUT``).
        """
        stop = stop or asyncio.Event()
        reload = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reload.set)
        health = self._health_server()
        self._start_push()
        watchdog = asyncio.ensure_future(self._watchdog(stop))
        self._last_tick = time.monotonic()
        try:
            while True:
                in_flight: set[asyncio.Future[PollOutcome]] = set()
                async with self._client() as client:
                    scheduler = self._scheduler(client, in_flight)
                    scheduler.start()
                    notify("READY=1", f"STATUS=polling {len(self.pollers)} source(s)")
                    log.info("running sources=%d", len(self.pollers))
                    await _first(stop, reload)
                    scheduler.shutdown(wait=False)
                    if in_flight:
                        log.info("waiting for %d poll(s) in flight", len(in_flight))
                        await asyncio.wait(in_flight, timeout=STOP_TIMEOUT)
                if stop.is_set():
                    break
                notify("RELOADING=1")
                reload.clear()
                self.reload()
            notify("STOPPING=1")
            async with self._alerting:  # let a delivery in progress finish
                pass
        finally:
            watchdog.cancel()
            self._stop_push()
            if health is not None:
                health.stop()
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            self.locks.close()

    def _scheduler(
        self, client: httpx.AsyncClient, in_flight: set[asyncio.Future[PollOutcome]]
    ) -> AsyncIOScheduler:
        async def job(poller: SourcePoller, force: bool = False) -> None:
            task = asyncio.ensure_future(self._limited(poller.poll(client, force=force)))
            in_flight.add(task)
            try:
                outcome = await task
            finally:
                in_flight.discard(task)
            self._tally.add(outcome)
            if not outcome.skipped:
                state = "ok" if outcome.ok else "failed"
                notify(f"STATUS=last poll: {outcome.source} {state}, {outcome.stored} new")
            if outcome.catch_up and not self.storage.shared:  # a burst larger than max_pages:
                # read on before the interval (on PostgreSQL its next_poll says so already)
                scheduler.add_job(
                    job,
                    "date",
                    run_date=datetime.now().astimezone() + CATCH_UP,
                    args=[poller, True],
                    id=f"{poller.source.name}:catch-up",
                    replace_existing=True,
                )

        def polled(name: str, task: asyncio.Future[None]) -> None:
            self._polling.discard(name)
            if not task.cancelled() and (error := task.exception()) is not None:
                log.error("poll crashed source=%s", name, exc_info=error)

        async def dispatch() -> None:
            """Start the poll of each source due by the database's schedule, unless this
            instance polls it already; its lock decides which instance polls it."""
            resting = await asyncio.to_thread(self.storage.resting_sources)
            for poller in self.pollers:
                name = poller.source.name
                if name not in resting and name not in self._polling:
                    self._polling.add(name)
                    task = asyncio.ensure_future(job(poller))
                    task.add_done_callback(functools.partial(polled, name))

        scheduler = AsyncIOScheduler(timezone="UTC")
        now = datetime.now().astimezone()
        if self.storage.shared:
            scheduler.add_job(
                dispatch,
                IntervalTrigger(seconds=DISPATCH_EVERY.total_seconds()),
                id="dispatch",
                next_run_time=now,
                max_instances=1,
                coalesce=True,
            )
        else:
            for poller in self.pollers:
                seconds = poller.source.interval.total_seconds()
                scheduler.add_job(
                    job,
                    IntervalTrigger(seconds=seconds, jitter=min(30, int(seconds * 0.1))),
                    args=[poller],
                    id=poller.source.name,
                    next_run_time=now,
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=int(seconds),
                )
        scheduler.add_job(
            self.detect_and_alert,
            IntervalTrigger(seconds=self._detect_every.total_seconds()),
            id="detect-and-alert",
            next_run_time=now,
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._log_polls,
            IntervalTrigger(seconds=SUMMARY_EVERY.total_seconds()),
            id="poll-summary",
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self.prune,
            IntervalTrigger(seconds=PRUNE_EVERY.total_seconds()),
            id="prune",
            next_run_time=now,
            max_instances=1,
            coalesce=True,
        )
        return scheduler

    def _log_polls(self) -> None:
        now = time.monotonic()
        self._tally.log("polls", now - self._tally_since)
        self._tally_since = now

    def _new_slots(self) -> None:
        # one per event loop: a semaphore belongs to the loop that first waited on it
        self._slots = asyncio.Semaphore(self.config.network.max_concurrent_polls)

    async def _limited(self, poll: Awaitable[PollOutcome]) -> PollOutcome:
        """Run ``poll`` when one of ``max_concurrent_polls`` slots is free: a thousand feeds
        due at once queue here, not in the HTTP pool where waiting would count as a timeout."""
        async with self._slots:
            return await poll

    def _client(self) -> httpx.AsyncClient:
        network = self.config.network
        return make_client(
            block_private=network.block_private,
            allow_networks=network.allow_networks,
            max_connections=network.max_concurrent_polls,
        )

    def _health_server(self) -> HealthServer | None:
        address = self.config.service.health_address
        if address is None:
            return None
        server = HealthServer(*address, self.health, self.metrics.registry)
        server.start()
        return server

    async def _watchdog(self, stop: asyncio.Event) -> None:
        """Ping systemd's watchdog from the event loop: a stuck loop stops the pings."""
        interval = watchdog_interval()
        if interval is None:
            return
        while not stop.is_set():
            notify("WATCHDOG=1")
            await asyncio.sleep(interval)


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
