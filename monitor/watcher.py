"""From stored mentions to incidents and alerts: the daemon's side of detection.

Each brand has a ``Detector`` fed with its negative mentions per closed bucket.  A bucket is
judged ``GRACE`` buckets after it closed, so posts that a source indexes a little late still
count.  How far a brand was judged is stored (``BrandWatch``) in the same transaction as the
incidents and outbox rows its buckets produced, so a restart neither pages twice nor skips a
bucket: on start the detector re-learns its baseline by replaying the stored history silently,
then carries on from where the last run stopped.

Each pass also judges the buckets not judged yet, the open one included, as they stand
(``Detector.early``): a burst that is already unmistakable pages on the pass after the poll that
stored it, not minutes later when its bucket closes.  The level it entered is in the incident's
history, so a restart (or another instance) takes it over instead of paging it again.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session

from monitor import snapshot
from monitor.alert import MentionBrief, MentionPayload, PagePayload
from monitor.config import Config
from monitor.detection import Detector, DetectorSettings, Level, Step
from monitor.model import BrandWatch, Incident, Mention, to_utc
from monitor.storage import Activity, Storage, bucket_floor, enqueue, instance_id

# The locks (and the PostgreSQL driver they load) only when a ``Watcher`` runs: the report and
# the backtest replay buckets through ``judge`` alone.
if TYPE_CHECKING:
    from monitor.locks import WorkLocks

log = logging.getLogger(__name__)

GRACE = 1
TOP_MENTIONS = 5
FIRST_MENTIONS = 3
LOUD_REACH = 25.0  # reach of about a million-follower account: announced during an incident
ORIGIN_POOL = 10  # the burst's most influential negative mentions, whose earliest are its origin
ORIGIN_LEAD = timedelta(hours=1)  # how long before an incident opened its burst may have begun
DUPLICATES = 3  # mentions read per top mention: copies of one post on other sources fold in
GIST_CHARS = 120
_LINKS = re.compile(r"https?://\S+|www\.\S+|@[\w.]+")
_NOT_WORDS = re.compile(r"[\W_]+")


def judge(detector: Detector, bucket: Activity) -> Step:
    """Feed one stored bucket to a brand's detector: its negative mentions, all its mentions
    (for the negative share) and the negative mentions' reach."""
    return detector.step(
        bucket.start, bucket.negative, total=bucket.volume, reach=bucket.negative_reach
    )


def replay(
    detector: Detector, storage: Storage, brand: str, start: datetime, end: datetime
) -> list[Step]:
    """Feed ``brand``'s stored buckets in [start, end) to ``detector``, oldest first, as the
    daemon judges them; return each bucket's step (the daemon's resume).  The report and
    ``brandmon backtest --from``, which also show the buckets, read them and feed each to
    ``judge`` the same way."""
    buckets = storage.activity(brand, start, end, detector.settings.bucket)
    return [judge(detector, bucket) for bucket in buckets]


class BrandWatcher:
    """Judges one brand's buckets and records incidents and alerts."""

    def __init__(
        self,
        brand: str,
        settings: DetectorSettings,
        storage: Storage,
        sinks: list[str],
        locks: WorkLocks,
    ) -> None:
        self.brand = brand
        self.locks = locks
        self.settings = settings
        self.storage = storage
        self.sinks = sinks
        self.detector = Detector(settings)
        self.judged_until: datetime | None = None
        self.incident_id: int | None = None

    def resume(self, now: datetime) -> None:
        """Re-learn the baseline from stored history, up to where the last run stopped."""
        with self.storage.session() as session:
            watch = session.get(BrandWatch, self.brand)
        until = to_utc(watch.judged_until) if watch else self._due(now)
        assert until is not None
        self.incident_id = watch.incident_id if watch else None
        replay(self.detector, self.storage, self.brand, until - self.settings.learning, until)
        self.judged_until = until
        self._resume_early()

    def _resume_early(self) -> None:
        """Re-enter the levels the incident entered on buckets not judged yet: they paged."""
        if self.incident_id is None:
            return
        with self.storage.session() as session:
            row = session.get(Incident, self.incident_id)
        if row is None or row.resolved_at is not None:
            return
        assert self.judged_until is not None
        for at, name in json.loads(row.history):
            moment = to_utc(datetime.fromisoformat(at))
            assert moment is not None
            if moment >= self.judged_until and Level[name] > self.detector.level:
                self.detector.resume_early(moment, Level[name], row.peak_score)

    def _restore(self, watch: BrandWatch) -> bool:
        """Take the brand up where the last judgement left it, from its saved detector;
        False when there is none to use (then history is replayed)."""
        if watch.detector is None:
            return False
        try:
            self.detector = snapshot.restore(watch.detector, self.settings)
        except snapshot.StaleSnapshot as exc:
            log.info("replaying history instead brand=%s: %s", self.brand, exc)
            return False
        self.judged_until = to_utc(watch.judged_until)
        self.incident_id = watch.incident_id
        self._resume_early()
        return True

    def _due(self, now: datetime) -> datetime:
        return bucket_floor(now, self.settings.bucket) - GRACE * self.settings.bucket

    def judge(self, now: datetime) -> int:
        """Judge every bucket that closed (plus grace) since the last call, then the ones not
        closed yet as they stand; return pages.

        Several instances may share the database: the brand's lock lets one judge at a time,
        and an instance that finds the brand judged further than it knows (by another instance)
        re-learns it from storage first.
        """
        lock = f"brand:{self.brand}"
        if not self.locks.take(lock):
            return 0
        try:
            with self.storage.session() as session:
                watch = session.get(BrandWatch, self.brand)
            stored = to_utc(watch.judged_until) if watch else None
            moved = stored is not None and stored != self.judged_until
            if (
                self.judged_until is None
                or moved
                or (watch and watch.incident_id != self.incident_id)
            ) and not (watch and self._restore(watch)):
                self.detector = Detector(self.settings)
                self.resume(now)
            return self._judge(now)
        finally:
            self.locks.free(lock)

    def _judge(self, now: datetime) -> int:
        assert self.judged_until is not None
        due = self._due(now)
        bucket = self.settings.bucket
        pages = changes = 0
        with self.storage.session() as session:
            if due > self.judged_until:
                for closed in self.storage.activity(self.brand, self.judged_until, due, bucket):
                    step = judge(self.detector, closed)
                    if step.event:
                        pages += self._record(session, step)
                    elif (
                        self.detector.incident is not None
                        and self.incident_id is not None
                        # a loud mention alone reaches as far as the bucket's negative ones
                        # together at most: most buckets need no search
                        and closed.negative_reach >= LOUD_REACH
                    ):
                        self._announce_loud(session, step)
                self.judged_until = due
                changes += 1
            pending = self.storage.activity(
                self.brand, self.judged_until, bucket_floor(now, bucket) + bucket, bucket
            )
            recent = self.detector.recent
            early = as_whole(pending, now, bucket) if any(a.negative for a in pending) else []
            for step in self.detector.early(early):
                upto = recent + [a.negative for a in pending if a.start <= step.at]
                pages += self._record(session, step, upto)
                changes += 1
            if changes:
                session.merge(
                    BrandWatch(
                        brand=self.brand,
                        judged_until=self.judged_until,
                        incident_id=self.incident_id,
                        detector=snapshot.save(self.detector),
                    )
                )
                session.commit()
        return pages

    def _record(self, session: Session, step: Step, recent: list[float] | None = None) -> int:
        """Write the incident change of ``step`` and, for a page or resolution, its alerts
        (``recent``: the negative counts up to ``step``'s bucket, when it was judged early)."""
        incident = self.detector.incident or self.detector.last_incident
        assert incident is not None
        row = session.get(Incident, self.incident_id) if self.incident_id else None
        if step.event == "opened" or row is None:
            row = Incident(
                brand=self.brand,
                started_at=incident.started,
                level=step.level.name,
                peak_level=step.level.name,
                peak_at=step.at,
                peak_score=step.score,
            )
            session.add(row)
            session.flush()
            self.incident_id = row.id
        row.level = step.level.name
        row.peak_level = incident.peak_level.name
        row.peak_at, row.peak_score = incident.peak_at, incident.peak_score
        row.resolved_at = incident.resolved
        row.history = json.dumps([[at.isoformat(), level.name] for at, level in incident.levels])
        top = self.storage.top_negative(
            self.brand,
            step.at - timedelta(hours=1),
            step.at + self.settings.bucket,
            TOP_MENTIONS * DUPLICATES,
        )
        if step.page:
            known = json.loads(row.mention_ids)
            row.mention_ids = json.dumps(known + [m.id for m in top if m.id not in known])
        session.add(row)
        if not (step.page or step.event == "resolved"):
            return 0
        kind = "page" if step.page else "resolved"
        payload = self._payload(step, row, top, self.detector.recent if recent is None else recent)
        key = f"{self.brand}:{row.id}:{step.at.isoformat()}:{kind}:{step.level.name}"
        enqueue(session, key=key, brand=self.brand, kind=kind, payload=payload, sinks=self.sinks)
        log.info(
            "alert queued brand=%s incident=%s kind=%s level=%s score=%.1f",
            self.brand,
            row.id,
            kind,
            step.level.name,
            step.score,
        )
        return int(step.page)

    def _announce_loud(self, session: Session, step: Step) -> None:
        """During an incident, a new negative mention with a very large reach (a news site, a
        million-follower account) goes to the incident's thread even when the level holds."""
        loud = self.storage.top_negative(
            self.brand,
            step.at,
            step.at + self.settings.bucket,
            TOP_MENTIONS,
            least_reach=LOUD_REACH,
        )
        for mention in loud:
            payload = MentionPayload(
                brand=self.brand,
                incident_id=self.incident_id,
                level=step.level.name,
                at=step.at.isoformat(),
                mention=_brief(mention),
            )
            key = f"{self.brand}:{self.incident_id}:mention:{mention.id}"
            enqueue(
                session,
                key=key,
                brand=self.brand,
                kind="mention",
                payload=payload,
                sinks=self.sinks,
            )

    def _window_totals(self, step: Step) -> tuple[float | None, float]:
        """The negative share and the negative reach of the window that fired."""
        width = max(1, step.evidence.buckets)
        bucket = self.settings.bucket
        window = self.storage.activity(
            self.brand, step.at - bucket * (width - 1), step.at + bucket, bucket
        )
        volume = sum(a.volume for a in window)
        share = sum(a.negative for a in window) / volume if volume else None
        return (
            None if share is None else round(share, 3),
            round(sum(a.negative_reach for a in window), 1),
        )

    def _payload(
        self, step: Step, row: Incident, top: list[Mention], recent: list[float]
    ) -> PagePayload:
        # Where it started: the earliest of the burst's most influential negative mentions,
        # from an hour before the incident opened (not the earliest complaint of all, which
        # is as likely an old, unrelated one).
        pool = self.storage.top_negative(
            self.brand,
            to_utc(row.started_at) - ORIGIN_LEAD,  # type: ignore[operator]
            step.at + self.settings.bucket,
            ORIGIN_POOL,
        )
        first = sorted(pool, key=lambda m: m.published_at)[:FIRST_MENTIONS]
        share, negative_reach = self._window_totals(step)
        during = (
            self.storage.activity(
                self.brand,
                to_utc(row.started_at),
                step.at + self.settings.bucket,
                self.settings.bucket,
            )
            if step.event == "resolved"
            else None
        )
        return PagePayload(
            brand=self.brand,
            incident_id=row.id,
            event=step.event,
            level=step.level.name,
            at=step.at.isoformat(),
            started_at=row.started_at.isoformat(),
            peak_level=row.peak_level,
            peak_at=row.peak_at.isoformat(),
            score=round(step.score, 2),
            why=step.why(self.settings.bucket),
            signal=step.signal,
            negative=_window(recent, step.evidence.buckets),
            expected=round(step.evidence.expected, 2) if step.signal == "negative" else None,
            window_minutes=int(self.settings.bucket.total_seconds() // 60) * step.evidence.buckets,
            previous_window=_window(recent, step.evidence.buckets, back=1),
            share=share,
            negative_reach=negative_reach,
            thresholds=dict(zip(("watch", "warning", "crisis"), self.settings.enter, strict=True)),
            top_mentions=distinct(top, TOP_MENTIONS),
            first_mentions=tuple(_brief(m) for m in first),
            total_negative=None if during is None else sum(a.negative for a in during),
            total_mentions=None if during is None else sum(a.volume for a in during),
        )


def _window(recent: list[float], width: int, back: int = 0) -> float:
    """Negative mentions in the last ``width`` buckets of ``recent`` (none for a resolution),
    or in the ``back``-th window of that width before them (for the growth rate)."""
    if not width:
        return 0.0
    end = len(recent) - back * width
    return sum(recent[max(0, end - width) : max(0, end)])


def as_whole(
    pending: list[Activity], now: datetime, bucket: timedelta
) -> list[tuple[datetime, float, float | None, float | None]]:
    """The buckets not judged yet as ``Detector.early`` reads them.  The open (last) one's
    other mentions are extrapolated to the whole bucket, so its negative share is not judged
    on a bucket that has had no time to fill with ordinary talk yet."""
    rows: list[tuple[datetime, float, float | None, float | None]] = [
        (a.start, a.negative, a.volume, a.negative_reach) for a in pending
    ]
    if pending:
        last = pending[-1]
        filled = min(1.0, max(now - last.start, timedelta(seconds=1)) / bucket)
        total = last.negative + (last.volume - last.negative) / filled
        rows[-1] = (last.start, last.negative, total, last.negative_reach)
    return rows


def distinct(mentions: list[Mention], limit: int) -> tuple[MentionBrief, ...]:
    """The first ``limit`` of ``mentions`` as alerts show them, the same post seen on several
    sources once (the first seen of it, with the others' links in ``also``): texts alike
    once links, handles, case, punctuation and spacing are set aside."""
    kept: dict[str, tuple[Mention, list[str]]] = {}
    for mention in mentions:
        key = gist(mention.text)
        found = kept.get(key)
        if found is None:
            if len(kept) < limit:
                kept[key] = (mention, [])
        elif mention.url and mention.url != found[0].url and mention.url not in found[1]:
            found[1].append(mention.url)
    return tuple(replace(_brief(m), also=tuple(links)) for m, links in kept.values())


def gist(text: str) -> str:
    """What is left of a post's text to tell it is a copy of another: its words, in lower
    case, without links, @handles and punctuation, at most ``GIST_CHARS`` of them."""
    words = _NOT_WORDS.sub(" ", _LINKS.sub(" ", text.lower())).split()
    return " ".join(words)[:GIST_CHARS]


def _brief(m: Mention) -> MentionBrief:
    return MentionBrief(
        id=m.id,
        source=m.source,
        author=m.author,
        followers=m.author_followers,
        reach=m.reach_score,
        text=m.text,
        url=m.url,
        category=m.category,
        priority=m.priority,
        published_at=m.published_at.isoformat(),
    )


class Watcher:
    """One ``BrandWatcher`` per configured brand."""

    def __init__(self, config: Config, storage: Storage, *, locks: WorkLocks | None = None) -> None:
        from monitor.locks import work_locks

        sinks = list(config.alerts.sinks)
        locks = locks or work_locks(storage, instance_id())
        self.brands = [
            BrandWatcher(
                brand.name,
                DetectorSettings.from_config(config.thresholds_for(brand)),
                storage,
                sinks,
                locks,
            )
            for brand in config.brands
        ]

    def judge(self, now: datetime) -> int:
        return sum(brand.judge(now) for brand in self.brands)

    def levels(self) -> dict[str, Level]:
        return {brand.brand: brand.detector.level for brand in self.brands}
