"""The ``brandmon`` command line."""

from __future__ import annotations

import atexit
import gc
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, TextIO

import typer

from monitor.vocabulary import CATEGORIES, PRIORITIES, SENTIMENTS

# The config (pydantic), the database layer, the scorer and its models take most of a second to
# import: each command imports what it uses, so `brandmon --help` starts at once and `score`
# loads no database layer (tests/test_startup.py checks what each one imports).
if TYPE_CHECKING:
    from rich.console import Console

    from monitor.backtest import Backtest
    from monitor.config import Config
    from monitor.detection import DetectorSettings
    from monitor.jsonl import LineError, Utf8Lines
    from monitor.model import AlertOutbox, Mention, RawMention
    from monitor.pipeline import Pipeline, PipelineReport
    from monitor.storage import Storage

app = typer.Typer(
    help="Brand-mention monitoring and crisis alerts.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


def main() -> None:
    """The ``brandmon`` command: ``app``, with Python's cyclic garbage collector set for it.

    brandmon makes many objects that live as long as the process (modules, models, lexicons,
    a month of buckets) and few reference cycles; each collection walks the objects made since
    the last, and each full one all of them.  So it collects after ``GC_EVERY`` new objects
    instead of 700 (`backtest` at a million mentions: 0.99 -> 0.93 s; `report` 0.80 -> 0.73 s),
    and not at all as the process ends, when the collections would walk everything only to
    free memory the process gives back (a tenth of what `brandmon score` takes).  What must be
    written or closed is, before that, by the commands themselves.

    numpy's OpenBLAS starts a thread a core as it is imported, to spread out large matrix
    products; brandmon multiplies none (its models add up weights), and on a 2-core machine
    those threads took a third of the CPU time of `brandmon score`.  So it runs one, unless
    the environment says otherwise."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    gc.set_threshold(GC_EVERY, 10, 10)
    atexit.register(gc.freeze)
    app()


GC_EVERY = 10_000
"""New objects between two of the garbage collector's youngest collections (Python's: 700)."""


class _Output:
    """Standard output or error as a rich ``Console``, made when first printed to: importing
    rich is a tenth of what `--help` costs.  Plain lines (``markup=False``) are written as
    they are, without rich: most commands print nothing else, and a mention's text is shown
    as written (rich would turn a ``:fire:`` in it into an emoji)."""

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr

    @cached_property
    def console(self) -> Console:
        from rich.console import Console

        return Console(stderr=self._stderr, highlight=False, soft_wrap=True)

    def print(self, *objects: Any, markup: bool = True, **options: Any) -> None:
        if markup or options or not all(isinstance(o, str) for o in objects):
            self.console.print(*objects, markup=markup, **options)
            return
        stream = sys.stderr if self._stderr else sys.stdout
        stream.write(" ".join(objects) + "\n")


out = _Output()
err = _Output(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML config file (default: $BRANDMON_CONFIG, else the embedded defaults).",
        dir_okay=False,
    ),
]


def _config(path: Path | None) -> Config:
    """The config at ``path`` (exit 2 naming each error); times now read in its zone."""
    from monitor.alert import show_times_in
    from monitor.config import ConfigError, config_path, load_config

    try:
        loaded = load_config(config_path(path))
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"error: {problem}", markup=False)
        raise typer.Exit(2) from None
    show_times_in(loaded.display.timezone)
    return loaded


def _storage(config: Config) -> Storage:
    from monitor.storage import Storage

    storage = Storage(config.storage.url, batch_size=config.storage.batch_size)
    with _database(storage):
        storage.create_schema()
    return storage


@contextmanager
def _database(storage: Storage) -> Iterator[None]:
    """Turn a database that cannot be reached or brought to this release's schema into one
    line naming it (without its password) and exit 2, instead of a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except SQLAlchemyError as exc:
        storage.close()
        where = storage.engine.url.render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        _stop(f"cannot open the database {where}: {reason}", code=2)


def _on_file(config: Config, db: Path | None) -> Config:
    """``config`` reading the existing SQLite file ``db`` (``--db``) instead of its storage."""
    if db is None:
        return config
    if not db.exists():
        raise typer.BadParameter(f"{db} does not exist", param_hint="--db")
    storage = config.storage.model_copy(update={"url": f"sqlite:///{db}"})
    return config.model_copy(update={"storage": storage})


DbOption = Annotated[
    Path | None,
    typer.Option(help="Read this SQLite file instead of the database of the config's [storage]."),
]


def _parse_since(value: str | None) -> datetime | None:
    """``--since`` takes an ISO time (``2026-11-24T08:00``) or an age (``24h``, ``7d``)."""
    if value is None:
        return None
    from monitor.config import parse_duration
    from monitor.model import to_utc, utcnow

    try:
        return utcnow() - parse_duration(value)
    except ValueError:
        pass
    try:
        return to_utc(datetime.fromisoformat(value))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is neither an ISO time nor an age like 24h", param_hint="--since"
        ) from None


@app.command("check-config")
def check_config(config: ConfigOption = None) -> None:
    """Validate a config file.

    Prints a summary of what it configures, or every error with its line.
    """
    from monitor.config import EMBEDDED, WebhookSource, config_path

    path = config_path(config)
    loaded = _config(path)
    for key, variable in loaded.alert_secrets():
        if not os.environ.get(variable):
            err.print(f"warning: {key}: environment variable {variable} is not set", markup=False)
    _require_source_secrets(loaded)
    out.print(f"ok: {path or EMBEDDED}", markup=False)
    for brand in loaded.brands:
        terms = len(brand.keywords) + len(brand.aliases) + len(brand.handles) + len(brand.hashtags)
        out.print(
            f"brand {brand.name}: {terms} terms, {len(brand.exclude)} exclusions", markup=False
        )
    for source in loaded.sources:
        state = "" if source.enabled else " (disabled)"
        if isinstance(source, WebhookSource):
            how = f"listening on http://{source.bind}:{source.port}{source.path}"
        else:
            how = f"every {int(source.interval.total_seconds())}s"
        out.print(f"source {source.name}: {source.type} {how}{state}", markup=False)
    out.print(f"storage: {loaded.storage.url.split('@')[-1]}", markup=False)
    out.print(f"alert sinks: {', '.join(loaded.alerts.sinks)}", markup=False)


def _require_source_secrets(config: Config) -> None:
    """Exit 2 naming each enabled source whose secret's environment variable is unset: it is a
    start-up error, not something to find in the logs later."""
    unset = config.unset_source_secrets()
    for message in unset:
        err.print(f"error: {message}", markup=False)
    if unset:
        raise typer.Exit(2)


@app.command()
def run(
    config: ConfigOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="Poll every source once, then exit.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log every poll and decision (debug level).")
    ] = False,
) -> None:
    """Run the daemon: poll, store and alert.

    Polls every enabled source at its interval, stores what names a brand and sends alerts.
    """
    from monitor import scheduler, workers
    from monitor.config import config_path
    from monitor.scheduler import Daemon

    loaded = _config(config)
    from monitor.service import setup_logging

    setup_logging(verbose=verbose, form=loaded.service.log_format)
    if not any(source.enabled for source in loaded.sources):
        err.print("error: no enabled [[sources]] in the config; nothing to poll", markup=False)
        raise typer.Exit(2)
    _require_source_secrets(loaded)
    storage = _storage(loaded)
    daemon = Daemon(loaded, storage, config_path=config_path(config))
    workers.start(loaded.service.worker_count)
    try:
        if not once:
            scheduler.run(daemon.run_forever())
            return
        outcomes = scheduler.run(daemon.run_once())
    finally:
        workers.stop()
        storage.close()
    for outcome in outcomes:
        if outcome.ok:
            line = f"{outcome.source}: {outcome.found} found, {outcome.stored} new"
        else:
            line = f"{outcome.source}: FAILED {outcome.error}"
        out.print(line, markup=False)
    if not all(outcome.ok for outcome in outcomes):
        raise typer.Exit(1)


def _ingest(
    pipeline: Pipeline, items: Iterable[RawMention | LineError], total: int
) -> tuple[PipelineReport, int]:
    """``ingest`` with a progress bar on a terminal and each skipped line named."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from monitor.pipeline import ingest_lines

    with Progress(
        TextColumn("ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err.console,
        transient=True,
        disable=not err.console.is_terminal,
    ) as progress:
        task = progress.add_task("ingest", total=total)
        return ingest_lines(
            pipeline,
            items,
            skipped=lambda line: err.print(f"skipped {line}", markup=False),
            done=lambda lines: progress.advance(task, lines),
        )


def _count_lines(path: Path) -> int:
    """The lines of ``path`` that are not blank."""
    try:
        with path.open("rb") as counting:
            return sum(1 for line in counting if line.strip())
    except OSError as exc:
        _cannot_read(path, exc)


def _first_texts(path: Path, count: int = 500, chars: int = 1_000) -> list[str]:
    """The texts of the first ``count`` lines of ``path`` read loosely, for the workers to warm
    up on: a line that is not a JSON object with a text is passed over here (and reported when
    it is read for real).  Each is cut to ``chars``: enough to tell its language, and little to
    send to a worker that is spawned rather than forked."""
    texts: list[str] = []
    with suppress(OSError), path.open("rb") as lines:  # gone since counted: reported when read
        for line in itertools.islice(lines, count):
            try:
                text = json.loads(line).get("text")
            except (ValueError, AttributeError, RecursionError):
                continue
            if isinstance(text, str):
                texts.append(text[:chars])
    return texts


def _open_lines(path: Path) -> Utf8Lines:
    from monitor.jsonl import Utf8Lines

    try:
        return Utf8Lines(path.open("rb"), bad=_bad_utf8)
    except OSError as exc:
        _cannot_read(path, exc)


def _cannot_read(path: Path, exc: OSError) -> NoReturn:
    err.print(f"error: cannot read {path}: {exc.strerror}", markup=False)
    raise typer.Exit(2) from None


def _bad_utf8(number: int) -> None:
    err.print(f"line {number}: not valid UTF-8; the bad bytes are read as U+FFFD", markup=False)


def _print_report(report: PipelineReport, skipped: int, invalid_utf8: int) -> None:
    """The summary, in posts (lines) that add up to those read; then the new mentions per
    brand, where a post naming two brands counts for each."""
    posts = report.posts
    parts = [
        f"{report.received + skipped} read: {posts['stored']} stored",
        f"{posts['known']} already known",
        f"{posts['unmatched']} matched no brand",
        f"{skipped} skipped",
    ]
    if posts["failed"]:
        parts.append(f"{posts['failed']} not stored (see the errors above)")
    out.print(", ".join(parts), markup=False)
    if len(report.by_brand) > 1:
        brands = ", ".join(f"{brand} {n}" for brand, n in sorted(report.by_brand.items()))
        shared = sum(report.by_brand.values()) > posts["stored"]
        why = " (a post naming several brands counts once for each)" if shared else ""
        out.print(f"new mentions per brand: {brands}{why}", markup=False)
    if report.clamped:
        out.print(f"{report.clamped} dated in the future (dated when read instead)", markup=False)
    if invalid_utf8:
        out.print(f"{invalid_utf8} with invalid UTF-8 (read as U+FFFD)", markup=False)


WORKERS_FROM = 10_000
"""Lines from which ``ingest`` scores in worker processes unless told: a worker takes a
fraction of a second to start, which the overlap of scoring and storing earns back only over
thousands of posts."""


@app.command()
def ingest(
    jsonl: Annotated[Path, typer.Option("--jsonl", help="File with one JSON mention per line.")],
    config: ConfigOption = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Score in this many processes beside this one, which stores what they scored "
            f"(default, from {WORKERS_FROM:,} lines: [service] workers, one per spare core; "
            "0: score here).",
        ),
    ] = None,
) -> None:
    """Store mentions from a JSON-lines file.

    Matches, scores and stores them as the daemon does.  Exits 1 when a line was skipped or
    a mention could not be stored, after storing the rest.
    """
    loaded = _config(config)
    total = _count_lines(jsonl)
    if workers is None:
        workers = loaded.service.worker_count if total >= WORKERS_FROM else 0
    from monitor.scoring_workers import ScoringWorkers

    # the workers get ready (about a second) while this process does
    scoring = ScoringWorkers(loaded, workers, warm_up=_first_texts(jsonl) if workers else ())
    try:
        lines = _open_lines(jsonl)
        storage = _storage(loaded)
        from monitor.jsonl import read_jsonl
        from monitor.pipeline import Pipeline

        try:
            pipeline = Pipeline(loaded, storage, workers=scoring)
            report, skipped = _ingest(pipeline, read_jsonl(lines), total)
        finally:
            storage.close()
    finally:
        scoring.close()
    _print_report(report, skipped, lines.invalid)
    if skipped or report.failed:
        raise typer.Exit(1)


_TSV_COLUMNS = (
    "mention_id",
    "published_at",
    "brand",
    "source",
    "author",
    "sentiment",
    "compound",
    "reach",
    "category",
    "priority",
    "url",
    "text",
)


def _tsv_row(mention: Mention) -> list[str]:
    values = [
        mention.id,
        mention.published_at.isoformat(),
        mention.brand,
        mention.source,
        mention.author,
        mention.sentiment_label,
        f"{mention.sentiment_compound:.4f}",
        f"{mention.reach_score:.1f}",
        mention.category,
        mention.priority,
        mention.url,
        mention.text,
    ]
    # one mention per line, one field per tab, whatever the text holds
    return [" ".join(str(v).split()) if v is not None else "" for v in values]


def _print_mentions(mentions: list[Mention], form: str) -> None:
    if form == "json":
        for mention in mentions:
            # "id" would be read back as the post's own id by `brandmon ingest`
            row = json.loads(mention.model_dump_json(exclude={"id"}))
            sys.stdout.write(json.dumps({"mention_id": mention.id, **row}, ensure_ascii=False))
            sys.stdout.write("\n")
        return
    if form == "tsv":
        for row in [list(_TSV_COLUMNS), *map(_tsv_row, mentions)]:
            sys.stdout.write("\t".join(row) + "\n")
        return
    # A line of facts, then the assessment and the text wrapped and indented: any terminal
    # width reads, wide characters and long links included.
    from rich.console import Console
    from rich.text import Text

    from monitor.alert import plain_time

    screen = Console(highlight=False)  # as wide as the terminal (80 columns when unknown)
    for m in mentions:
        text = m.text if len(m.text) <= 280 else m.text[:279] + "…"
        facts = (
            f"#{m.id}  {plain_time(m.published_at)}  {m.brand}  {m.source}  "
            f"{m.author or 'unknown author'}"
        )
        screen.print(Text(facts, style="bold"), overflow="fold")
        said = Text(
            f"{m.sentiment_label} {m.sentiment_compound:+.2f}, reach {m.reach_score:.1f}: "
            + " ".join(text.split())
        )
        for line in said.wrap(screen, screen.width - _INDENT, overflow="fold"):
            line.rstrip()
            screen.print(Text(" " * _INDENT) + line)
    screen.print(f"{len(mentions)} mention(s)", markup=False)


_INDENT = 4


def _known_brand(config: Config, brand: str | None) -> None:
    """Exit 2 when ``brand`` is given and not one of the config's, naming those."""
    names = [b.name for b in config.brands]
    if brand is not None and brand not in names:
        _stop(f"--brand: no brand {brand!r} in the config (brands: {', '.join(names)})", code=2)


@app.command()
def mentions(
    config: ConfigOption = None,
    brand: Annotated[str | None, typer.Option(help="Only this brand (as in the config).")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time or an age such as 24h or 7d.")] = None,
    priority: Annotated[
        str | None, typer.Option(help="Only P1, or P1 and P2, ... (P1 is the most urgent).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="List at most this many (the newest).")] = 100,
    db: DbOption = None,
    form: Annotated[
        Literal["table", "tsv", "json"] | None,
        typer.Option(
            "--format",
            help="table (to read), tsv (a header, then one mention per line) or json (one "
            "object per line).  Default: table on a terminal, tsv when piped.",
        ),
    ] = None,
) -> None:
    """List stored mentions, newest first."""
    if priority is not None and priority not in PRIORITIES:
        raise typer.BadParameter("expected P1, P2, P3 or P4", param_hint="--priority")
    loaded = _on_file(_config(config), db)
    _known_brand(loaded, brand)
    storage = _storage(loaded)
    try:
        found = storage.mentions(
            brand=brand, since=_parse_since(since), priority=priority, limit=limit
        )
    finally:
        storage.close()
    _print_mentions(found, form or ("table" if sys.stdout.isatty() else "tsv"))


@app.command()
def label(
    mention_id: Annotated[
        int,
        typer.Argument(
            metavar="MENTION_ID", help="The mention's id, as brandmon mentions lists it."
        ),
    ],
    sentiment: Annotated[
        str,
        typer.Argument(metavar="SENTIMENT", help=f"The right sentiment: {', '.join(SENTIMENTS)}."),
    ],
    category: Annotated[
        str | None, typer.Option(help=f"The triage category: {', '.join(CATEGORIES)}.")
    ] = None,
    by: Annotated[str | None, typer.Option(help="Who labels it (default: nobody named).")] = None,
    config: ConfigOption = None,
) -> None:
    """Correct a mention's sentiment and category.

    brandmon train learns from these labels.  Labelling a mention again replaces its label.
    Exits 2 for an unknown sentiment or category, 1 for an id no stored mention has.
    """
    from monitor.storage import UnknownMention

    storage = _storage(_config(config))
    try:
        stored = storage.label_mention(mention_id, sentiment, category, by)
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    except UnknownMention as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    finally:
        storage.close()
    extra = f", category {stored.category}" if stored.category else ""
    who = f" by {stored.labelled_by}" if stored.labelled_by else ""
    out.print(f"mention {mention_id}: labelled {stored.sentiment}{extra}{who}", markup=False)


@app.command()
def score(
    config: ConfigOption = None,
    followers: Annotated[
        int | None, typer.Option(help="Author followers, for reach and so priority.")
    ] = None,
) -> None:
    """Score texts from stdin, one per line.

    Writes one JSON object per line, with: label, compound, lang, confidence (low for
    languages VADER does not read), rules (the complaint rules that matched), category and
    priority.  With --config, the brands' own [brands.lexicon] phrases apply too.
    """
    from monitor.scoring.reach import reach_score

    loaded = _config(config)
    from monitor.assessment import assess, scorer_for
    from monitor.scoring import Post

    scorer = scorer_for(loaded)
    brands = [b.name for b in loaded.brands if b.lexicon]
    reach = reach_score(source_type="unknown", followers=followers)
    for batch in _line_batches(sys.stdin):
        jobs = [(Post(line.rstrip("\n"), brands=brands), reach) for line in batch]
        for found in assess(scorer, jobs):
            sentiment = found.sentiment
            result = {
                "label": sentiment.label,
                "compound": round(sentiment.compound, 4),
                "lang": sentiment.language,
                "confidence": sentiment.confidence,
                "rules": list(sentiment.rules),
                "category": found.triage.category,
                "priority": found.triage.priority,
            }
            sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        sys.stdout.flush()


_SCORED_TOGETHER = 512
"""Lines of piped input scored as one batch (the models read a batch many times faster)."""


def _line_batches(stream: TextIO) -> Iterator[list[str]]:
    """Lines one at a time from a terminal, where each answer is awaited; in batches from a
    pipe or file."""
    if stream.isatty():
        yield from ([line] for line in stream)
        return
    while batch := list(itertools.islice(stream, _SCORED_TOGETHER)):
        yield batch


@app.command()
def train(
    config: ConfigOption = None,
    from_csv: Annotated[
        Path | None,
        typer.Option(
            "--from-csv",
            help="Directory of public labelled sets, one <language>.csv (label,text) each.",
        ),
    ] = None,
    add: Annotated[
        list[str] | None,
        typer.Option(help="LANGUAGE=FILE: one more labelled CSV for a language's model."),
    ] = None,
    ship: Annotated[
        bool,
        typer.Option(help="Train the models brandmon ships, from --from-csv alone."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Directory to write models to (default: the config's [sentiment] models)."
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Train sentiment models on your labels.

    Learns from the labels set with brandmon label, and keeps each model only where
    cross-validation on those labels says it beats today's scoring.  With --ship, trains the
    models brandmon ships from the public sets instead.  Needs scikit-learn
    (pip install 'brandmon[train]').
    """
    try:
        import sklearn  # noqa: F401
    except ImportError:
        _stop("brandmon train needs scikit-learn: pip install 'brandmon[train]'", code=2)
    from monitor import training
    from monitor.scoring.model import write_models

    try:
        extra = training.labelled_sets(add or [])
    except ValueError as exc:
        _stop(f"--add {exc}", code=2)
    if ship:
        if from_csv is None or out is None:
            _stop("--ship needs --from-csv DIR and --out DIR", code=2)
        models = [
            *training.train_shipped(from_csv, extra=extra),
            training.train_identifier(from_csv),
        ]
        for model in models:
            figures = ", ".join(f"{k} {v}" for k, v in model.info.figures.items())
            typer.echo(f"{model.info.language}: held out {figures}")
        typer.echo(f"wrote {write_models(out, models)}")
        return
    loaded = _on_file(_config(config), db)
    target = out or loaded.sentiment.models
    if target is None:
        _stop("set [sentiment] models in the config, or pass --out DIR", code=2)
    storage = _storage(loaded)
    try:
        labelled = storage.labelled_mentions()
    finally:
        storage.close()
    base = training.public_sets(from_csv, extra) if from_csv else {}
    from monitor.assessment import scorer_for

    models, verdicts = training.retrain(labelled, partial(scorer_for, loaded), base=base)
    for verdict in verdicts:
        typer.echo(training.describe(verdict))
    if models:
        typer.echo(f"wrote {write_models(target, models)}")
    else:
        typer.echo("no model beat today's scoring; nothing written")


def _stop(message: str, *, code: int) -> NoReturn:
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


@app.command("test-alert")
def test_alert(config: ConfigOption = None) -> None:
    """Send a test alert through every sink.

    The alert is clearly marked as a test.
    """
    from alerts.base import SinkError, test_alert
    from alerts.sinks import build_sinks

    loaded = _config(config)
    storage = _storage(loaded)
    failed = 0
    try:
        for sink in build_sinks(loaded, storage):
            try:
                sink.send(test_alert(loaded.brands[0].name))
            except SinkError as exc:
                failed += 1
                err.print(f"{sink.name}: FAILED {exc}", markup=False)
            else:
                out.print(f"{sink.name}: ok", markup=False)
    finally:
        storage.close()
    if failed:
        raise typer.Exit(1)


outbox_app = typer.Typer(no_args_is_help=False, rich_markup_mode=None)
app.add_typer(outbox_app, name="outbox")

OutboxIds = Annotated[
    list[int], typer.Argument(help="Ids of outbox alerts, as brandmon outbox lists them.")
]


@outbox_app.callback(invoke_without_command=True)
def outbox(
    ctx: typer.Context,
    config: ConfigOption = None,
    status: Annotated[
        Literal["failed", "pending", "sent", "dropped", "all"] | None,
        typer.Option(help="Only alerts in this status (default: failed and pending)."),
    ] = None,
) -> None:
    """List, retry or drop undelivered alerts.

    Lists the alerts a sink refused for good (failed) and those waiting (pending); retry or
    drop them by id.
    """
    from alerts.outbox import STATUSES, outbox_rows

    ctx.obj = config  # so that `outbox --config F retry 3` retries in F's database
    if ctx.invoked_subcommand is not None:
        return
    statuses = STATUSES if status == "all" else (status,) if status else ("failed", "pending")
    storage = _storage(_config(config))
    try:
        rows = outbox_rows(storage, statuses)
    finally:
        storage.close()
    _print_outbox(rows)


def _print_outbox(rows: list[AlertOutbox]) -> None:
    """One line per alert, in columns; the last error is printed whole."""
    from monitor.alert import plain_time

    lines = [["id", "status", "sink", "brand", "kind", "level", "attempts", "created"]]
    lines += [
        [
            str(row.id),
            row.status,
            row.sink,
            row.brand,
            row.kind,
            str(json.loads(row.payload).get("level") or "-"),
            str(row.attempts),
            plain_time(row.created_at),
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    errors = ["last error"] + [row.last_error or "" for row in rows]
    for line, error in zip(lines, errors, strict=True):
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        out.print("  ".join([*cells, error]).rstrip(), markup=False)
    out.print(f"{len(rows)} alert(s)", markup=False)


@outbox_app.command("retry")
def outbox_retry(ctx: typer.Context, ids: OutboxIds, config: ConfigOption = None) -> None:
    """Send failed or dropped alerts again.

    Makes them pending again, due now: the daemon sends them next.
    """
    from alerts.outbox import retry

    _change_outbox(retry, ids, config or ctx.obj, "pending")


@outbox_app.command("drop")
def outbox_drop(ctx: typer.Context, ids: OutboxIds, config: ConfigOption = None) -> None:
    """Give up on failed or pending alerts.

    Marks them dropped: never sent, but kept in the outbox.
    """
    from alerts.outbox import drop

    _change_outbox(drop, ids, config or ctx.obj, "dropped")


def _change_outbox(
    change: Callable[[Storage, Sequence[int]], list[AlertOutbox]],
    ids: list[int],
    config: Path | None,
    done: str,
) -> None:
    """Apply ``change`` to the alerts ``ids``: all of them, or none and exit 2."""
    from alerts.outbox import OutboxChangeError

    storage = _storage(_config(config))
    try:
        rows = change(storage, ids)
    except OutboxChangeError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    finally:
        storage.close()
    for row in rows:
        out.print(f"{row.id}: {done} ({row.sink}, {row.brand}, {row.kind})", markup=False)


db_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)
app.add_typer(db_app, name="db", help="Show or upgrade the database schema.")


@db_app.command("current")
def db_current(config: ConfigOption = None) -> None:
    """Print the database's schema version.

    And the version this release's schema is at.
    """
    from monitor import migrations
    from monitor.storage import Storage

    loaded = _config(config)
    storage = Storage(loaded.storage.url)
    try:
        with _database(storage), storage.engine.connect() as connection:
            found = migrations.current(connection)
    finally:
        storage.close()
    out.print(f"database: {found or 'none (empty, or made before migrations)'}", markup=False)
    out.print(f"this release: {migrations.head()}", markup=False)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Upgrade the database schema to this release.

    brandmon run does it too, at start; this does it ahead of a deploy.
    """
    from monitor import migrations
    from monitor.storage import Storage

    loaded = _config(config)
    storage = Storage(loaded.storage.url)
    try:
        with _database(storage), storage.engine.connect() as connection:
            before = migrations.current(connection)
        with _database(storage):
            storage.create_schema()
    finally:
        storage.close()
    after = migrations.head()
    if before == after:
        out.print(f"already at {after}", markup=False)
    else:
        out.print(f"upgraded from {before or 'none'} to {after}", markup=False)


@app.command()
def backtest(
    config: ConfigOption = None,
    volume_csv: Annotated[
        Path | None,
        typer.Option(
            "--volume-csv",
            help="CSV of counts per bucket: timestamp,value and, optionally, negative.",
        ),
    ] = None,
    out_csv: Annotated[
        Path | None, typer.Option("--out", help="Write timestamp,value,level,alert here.")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Stored mentions from (ISO time or age).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Stored mentions until (default: now).")
    ] = None,
    brand: Annotated[
        str | None, typer.Option(help="Thresholds (and, from storage, mentions) of this brand.")
    ] = None,
    pages_per_month: Annotated[
        float | None,
        typer.Option(
            "--pages-per-month",
            min=0,
            help="Propose the thresholds that would have paged at most this often per 30 days.",
        ),
    ] = None,
) -> None:
    """Replay history: what would have paged?

    Runs stored mentions, or counts from a CSV, through the daemon's detector.
    """
    from monitor.backtest import BacktestInputError, backtest_csv, backtest_stored
    from monitor.detection import DetectorSettings

    loaded = _config(config)
    brands = [b for b in loaded.brands if brand is None or b.name == brand]
    if not brands:
        raise typer.BadParameter(f"no brand named {brand!r} in the config", param_hint="--brand")
    if (volume_csv is None) == (start is None):
        raise typer.BadParameter("give either --volume-csv FILE or --from TIME")
    if volume_csv is not None:
        if out_csv is None:
            raise typer.BadParameter("--volume-csv needs --out OUT.csv", param_hint="--out")
        detection = loaded.thresholds_for(brands[0]) if brand else loaded.detection
        settings = DetectorSettings.from_config(detection)
        try:
            with volume_csv.open(newline="") as source, out_csv.open("w", newline="") as target:
                replay = backtest_csv(source, target, settings)
        except (OSError, BacktestInputError) as exc:
            err.print(f"error: {volume_csv}: {exc}", markup=False)
            raise typer.Exit(2) from None
        for line in replay.summary.lines(settings.bucket):
            out.print(line, markup=False)
        if pages_per_month is not None:
            _print_proposal(replay, settings, pages_per_month, "")
        return
    from monitor.model import utcnow

    since, until = _parse_since(start), _parse_since(end) or utcnow()
    assert since is not None
    storage = _storage(loaded)
    try:
        for item in brands:
            settings = DetectorSettings.from_config(loaded.thresholds_for(item))
            replay = backtest_stored(storage, item.name, settings, since, until)
            out.print(f"{item.name}:", markup=False)
            for line in replay.summary.lines(settings.bucket):
                out.print(f"  {line}", markup=False)
            if pages_per_month is not None:
                _print_proposal(replay, settings, pages_per_month, "  ")
    finally:
        storage.close()


def _print_proposal(
    replay: Backtest, settings: DetectorSettings, pages_per_month: float, indent: str
) -> None:
    from monitor.alert import plain_time
    from monitor.backtest import propose

    proposal = propose(replay.steps, settings, pages_per_month)
    watch, warning, crisis = proposal.settings.enter
    out.print(
        f"{indent}at most {pages_per_month:g} page(s) per 30 days: watch = {watch:g}, "
        f"warning = {warning:g}, crisis = {crisis:g} (now {settings.enter[0]:g}, "
        f"{settings.enter[1]:g}, {settings.enter[2]:g})",
        markup=False,
    )
    for step in proposal.pages:
        said = f"{plain_time(step.at)}: {step.level.said}: {step.why(settings.bucket)}"
        out.print(f"{indent}  would page {said}", markup=False)
    for step in proposal.dropped:
        out.print(
            f"{indent}  would no longer page {plain_time(step.at)}: {step.level.said}",
            markup=False,
        )


@app.command()
def report(
    brand: Annotated[str, typer.Option(help="The brand to report on.")],
    since: Annotated[
        str | None,
        typer.Option(
            help="Start: an ISO time or an age such as 24h or 7d.  Default: 7d; without "
            "--since and --until, the whole range of the stored mentions when the last 7 days "
            "hold none (said so)."
        ),
    ] = None,
    until: Annotated[str | None, typer.Option(help="End (default: now).")] = None,
    out_html: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Write an HTML report on one brand.

    One self-contained page of charts, incidents and top mentions.
    """
    loaded = _on_file(_config(config), db)
    _known_brand(loaded, brand)
    from monitor.model import utcnow
    from monitor.report import DEFAULT_WINDOW

    end = _parse_since(until) or utcnow()
    start = _parse_since(since) or end - DEFAULT_WINDOW
    storage = _storage(loaded)
    try:
        default = since is None and until is None
        if default and not storage.find_mentions(brand=brand, start=start, end=end, limit=1):
            start, end = _data_range(storage, brand, start, end)
        _write_report(loaded, storage, brand, start, end, out_html)
    finally:
        storage.close()


def _data_range(
    storage: Storage, brand: str, start: datetime, end: datetime
) -> tuple[datetime, datetime]:
    """The range of ``brand``'s stored mentions, said, for a default window that holds none."""
    from monitor.alert import plain_time
    from monitor.report import data_range

    found = data_range(storage, brand)
    if found is None:
        out.print(f"no mention of {brand} is stored: the report is empty", markup=False)
        return start, end
    out.print(
        f"no mention of {brand} from {plain_time(start)} to {plain_time(end)}, the last 7 "
        f"days: the report covers the stored mentions instead, {plain_time(found[0])} to "
        f"{plain_time(found[1])}",
        markup=False,
    )
    return found


def _write_report(
    config: Config, storage: Storage, brand: str, start: datetime, end: datetime, path: Path
) -> None:
    from monitor.report import build_report, render_html

    try:
        built = build_report(config, storage, brand, start, end)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--brand") from None
    path.write_text(render_html(built), encoding="utf-8")
    out.print(
        f"report {path}: {built.volume} mentions, {built.negative} negative, "
        f"{len(built.incidents)} incident(s)",
        markup=False,
    )


@app.command()
def demo(
    config: ConfigOption = None,
    db: Annotated[
        Path, typer.Option(help="SQLite file for the demo; recreated on every run.")
    ] = Path("brandmon-demo.db"),
) -> None:
    """Replay a demo crisis, in seconds.

    A KFC-Malaysia-style crisis goes through the full pipeline and alerts.
    """
    from alerts.outbox import OutboxSender
    from alerts.sinks import build_sinks
    from monitor.demo import BRAND, demo_config, remove_database, run_demo

    loaded = demo_config(_config(config), db)
    remove_database(db)
    storage = _storage(loaded)
    try:
        out.print(f"Replaying two quiet days, then a crisis, for {BRAND}…", markup=False)
        run_demo(loaded, storage, OutboxSender(storage, build_sinks(loaded, storage)), out.print)
        stored = len(storage.mentions(brand=BRAND, limit=100_000))
        from monitor.model import utcnow

        now = utcnow()
        _write_report(
            loaded, storage, BRAND, now - timedelta(hours=12), now, db.with_suffix(".html")
        )
    finally:
        storage.close()
    out.print(
        f"{stored} mentions stored in {db}; list them with: "
        f'brandmon mentions --db {db} --brand "{BRAND}" --since 12h',
        markup=False,
    )
