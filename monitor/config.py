"""Configuration: one TOML file, validated by pydantic, with errors that point at the line.

Every section forbids unknown keys, so a misspelt threshold is an error rather than a silent
default.  Secrets never live in the file: a setting such as ``token_env`` names the environment
variable that holds the secret.

Without ``--config`` (or ``$BRANDMON_CONFIG``) brandmon runs on the embedded defaults in
``monitor/data/default.toml``: SQLite in the working directory, the console sink and the
demo brands.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from monitor.detection_defaults import DEFAULTS
from monitor.plugins import (
    CONNECTORS,
    PUSH_TYPES,
    SECTIONLESS,
    SINKS,
    connector_class,
    sink_module,
)
from monitor.vocabulary import Category, Priority

CONFIG_ENV = "BRANDMON_CONFIG"
_DATABASE_URL = re.compile(r"(?P<backend>[a-zA-Z][\w-]*)(?:\+[\w-]+)?://")
"""The start of a SQLAlchemy URL: ``backend[+driver]://``."""
EMBEDDED = "<embedded defaults>"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey", "bearer")


def parse_duration(value: Any) -> timedelta:
    """Accept ``"30s"``, ``"5m"``, ``"1.5h"``, ``"7d"`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError('expected a duration such as "5m" or a number of seconds')
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str) and (found := _DURATION.match(value)):
        return timedelta(seconds=float(found[1]) * _UNIT_SECONDS[found[2]])
    raise ValueError(f'expected a duration such as "30s", "5m", "1h" or "7d", got {value!r}')


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(
            f'{value!r} is not an environment variable name (expected e.g. "SLACK_BOT_TOKEN"); '
            "put the secret in the environment, not in this file"
        )
    return value


EnvName = Annotated[str, BeforeValidator(_env_name)]


def _host_port(value: str) -> str:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'{value!r} is not host:port, e.g. "127.0.0.1:9464"')
    return value


HostPort = Annotated[str, BeforeValidator(_host_port)]


def address(host_port: str) -> tuple[str, int]:
    """``("127.0.0.1", 9464)`` from ``"127.0.0.1:9464"`` (``[::1]:9464`` for IPv6)."""
    host, _, port = host_port.rpartition(":")
    return host.strip("[]"), int(port)


class StorageConfig(Section):
    url: str = "sqlite:///./brandmon.db"
    batch_size: int = Field(default=500, ge=1, le=10_000)
    retention: Duration | None = None
    """Delete mentions older than this (e.g. ``"180d"``); keep everything when unset."""

    @field_validator("retention")
    @classmethod
    def _longer_than_detection_needs(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < timedelta(days=14):
            raise ValueError("retention must be at least 14d: detection learns from history")
        return value

    @field_validator("url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        # SQLAlchemy's own parser (make_url) would do, but importing SQLAlchemy takes a tenth of
        # a second that `--help`, `check-config` and `score` do not otherwise spend
        found = _DATABASE_URL.match(value)
        if found is None:
            raise ValueError(
                f"{value!r} is not a SQLAlchemy URL "
                '(e.g. "sqlite:///./brandmon.db" or "postgresql+psycopg://user@host/db")'
            )
        backend = found["backend"]
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
        return value


class BrandConfig(Section):
    """A brand to watch and the words that name it."""

    name: str = Field(min_length=1)
    keywords: list[str] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    handles: list[str] = Field(default_factory=list)
    hashtags: list[str] = Field(default_factory=list)
    detection: dict[str, Any] = Field(default_factory=dict)
    lexicon: dict[Annotated[str, Field(pattern=r"^[a-z][a-z_]*$")], list[str]] = Field(
        default_factory=dict
    )
    """The brand's own complaint phrases per rule family (known or new), e.g.
    ``outage = ["kettle app offline"]``; matched as whole words in English mentions."""

    @field_validator("detection")
    @classmethod
    def _known_thresholds(cls, value: dict[str, Any]) -> dict[str, Any]:
        Thresholds.model_validate(value)
        return value

    @model_validator(mode="after")
    def _has_terms(self) -> BrandConfig:
        if not any(
            t.strip().strip("@#")
            for t in (*self.keywords, *self.aliases, *self.handles, *self.hashtags)
        ):
            raise ValueError(
                f"brand {self.name!r} has no keywords, aliases, handles or hashtags to match on"
            )
        return self


class SourceBase(Section):
    """What every ``[[sources]]`` entry has; each type's class (a connector's ``settings``)
    adds its own keys and narrows ``type``."""

    type: str
    name: str = Field(min_length=1, max_length=200)
    interval: Duration = timedelta(minutes=5)
    enabled: bool = True

    @field_validator("interval")
    @classmethod
    def _sane_interval(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=10):
            raise ValueError("poll interval must be at least 10s")
        return value


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


HttpUrl = Annotated[str, BeforeValidator(_http_url)]
Query = Annotated[str, Field(min_length=1, max_length=500)]


class WebhookSource(SourceBase):
    """An HTTP endpoint other tools push mentions to, authenticated by a shared secret."""

    type: Literal["webhook"]
    bind: str = "127.0.0.1"
    port: int = Field(default=8787, ge=1, le=65535)
    path: str = Field(default="/mentions", pattern=r"^/")
    secret_env: EnvName = "BRANDMON_WEBHOOK_SECRET"
    max_body_bytes: int = Field(default=1_000_000, ge=1_000)


SOURCE_TYPES = (*CONNECTORS, *PUSH_TYPES)


def _source_settings(value: Any) -> Any:
    """A ``[[sources]]`` entry validated by its type's own section class: the connector's
    ``settings`` (imported only for the types a config uses), or ``WebhookSource``."""
    if not isinstance(value, dict):
        return value  # an instance already, or an error pydantic reports
    kind = value.get("type")
    if kind is None:
        raise PydanticCustomError(
            "source_type_missing", "missing key 'type' (known: {known})", {"known": _known()}
        )
    if kind not in SOURCE_TYPES:
        raise PydanticCustomError(
            "source_type_unknown",
            "unknown source type {kind} (known: {known})",
            {"kind": repr(kind), "known": _known()},
        )
    settings = WebhookSource if kind in PUSH_TYPES else connector_class(kind).settings
    return settings.model_validate(value)


def _known() -> str:
    return ", ".join(sorted(SOURCE_TYPES))


SourceConfig = Annotated[SerializeAsAny[SourceBase], BeforeValidator(_source_settings)]
"""Any source's settings: a ``SourceBase`` subclass chosen by ``type``."""


class Thresholds(Section):
    """When a brand's negative talk pages; set in ``[detection]``, per brand in
    ``[brands.detection]``.  Scores are rarities against the brand's own past: a score ``s`` is
    as rare as a day whose biggest surprise comes once in ``e**s`` days (5: ~5 months)."""

    watch: float = Field(default=DEFAULTS.watch, gt=0)
    warning: float = Field(default=DEFAULTS.warning, gt=0)
    crisis: float = Field(default=DEFAULTS.crisis, gt=0)
    exit_ratio: float = Field(default=DEFAULTS.exit_ratio, gt=0, lt=1)
    min_count: int = Field(default=DEFAULTS.min_count, ge=1)
    min_ratio: float = Field(default=DEFAULTS.min_ratio, ge=1)
    exit_after: Duration = DEFAULTS.exit_after
    cooldown: Duration = DEFAULTS.cooldown
    page_from: Literal["watch", "warning", "crisis"] = DEFAULTS.page_from

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if not self.watch < self.warning < self.crisis:
            raise ValueError("thresholds must rise: watch < warning < crisis")
        return self


class DetectionConfig(Thresholds):
    bucket: Duration = DEFAULTS.bucket
    history: Duration = DEFAULTS.history
    warmup: Duration = DEFAULTS.warmup


class AlertsConfig(Section):
    """``[alerts]``: the sinks to deliver to, and one ``[alerts.<sink>]`` section for each sink
    that needs one, validated by the class the sink's module names (its ``SECTION``)."""

    model_config = ConfigDict(extra="allow")
    sinks: list[str] = Field(default_factory=lambda: ["console"])

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        sections = {key: value for key, value in data.items() if key != "sinks"}
        classes: dict[str, Any] = {
            key: (section, None)
            for key in sections
            if key in SINKS and (section := getattr(sink_module(key), "SECTION", None))
        }
        valid = create_model("AlertSections", __base__=Section, **classes).model_validate(sections)
        return {**data, **{key: getattr(valid, key) for key in classes}}

    @model_validator(mode="after")
    def _sinks_configured(self) -> AlertsConfig:
        for sink in self.sinks:
            if sink not in SINKS:
                raise ValueError(f"unknown sink {sink!r} (known: {', '.join(sorted(SINKS))})")
            if self.section(sink) is None and sink not in SECTIONLESS:
                raise ValueError(f'sink "{sink}" is listed but there is no [alerts.{sink}] section')
        return self

    def section(self, sink: str) -> Any:
        """Sink ``sink``'s ``[alerts.<sink>]`` settings, or ``None`` when there is none."""
        return (self.model_extra or {}).get(sink)


class RouteConfig(Section):
    """Send one triage category (at or above a priority) to the team channel that answers it."""

    category: Category
    channel: str = Field(min_length=1)
    team: str | None = None
    min_priority: Priority = "P4"


MAX_WORKERS = 2
"""Default most worker processes: the daemon's own process is the bottleneck beyond two."""


class ServiceConfig(Section):
    """How the daemon runs: its health/metrics endpoint, log format and worker processes."""

    health: HostPort | None = None
    """``host:port`` for ``/healthz`` and ``/metrics``; off when unset."""
    log_format: Literal["auto", "json", "text"] = "auto"
    workers: int | None = Field(default=None, ge=0, le=64)
    """Processes that parse feeds beside the daemon's own, and that ``ingest`` of a large file
    scores in (default: one per spare core, at most ``MAX_WORKERS``; 0: all in one process)."""

    @property
    def worker_count(self) -> int:
        if self.workers is not None:
            return self.workers
        return min(MAX_WORKERS, max(0, len(os.sched_getaffinity(0)) - 1))

    @property
    def health_address(self) -> tuple[str, int] | None:
        return None if self.health is None else address(self.health)


class ConsoleConfig(Section):
    """The web console ``brandmon run`` serves (``monitor.console``); off without this section.

    Login takes the team's token from the environment variable ``token_env``, never from this
    file."""

    bind: str = "127.0.0.1"
    port: int = Field(default=8790, ge=1, le=65535)
    token_env: EnvName = "BRANDMON_CONSOLE_TOKEN"


class NetworkConfig(Section):
    """Where sources may connect.  Feed and API URLs come from users; by default none may
    reach a loopback, private or link-local address (directly or by redirect)."""

    block_private: bool = True
    allow_networks: list[IPv4Network | IPv6Network] = Field(default_factory=list)
    """Exceptions, e.g. ``["10.20.0.0/16"]`` for an internal feed server."""
    max_concurrent_polls: int = Field(default=32, ge=1, le=500)


class ReportConfig(Section):
    """Where the HTML reports are published (``brandmon report --out DIR/<brand>.html``)."""

    base_url: HttpUrl | None = None
    """Slack's "Open report" button links to ``<base_url><brand>.html``."""


class SentimentConfig(Section):
    """The team's own sentiment models."""

    models: Path | None = None
    """The directory ``brandmon train`` writes the models it trained on the team's labels to;
    a language's model there is used instead of the shipped one."""


class DisplayConfig(Section):
    """How times read where a person reads them: console, Slack, email, report, ``mentions``."""

    timezone: str = "UTC"
    """An IANA time zone, e.g. ``Europe/Warsaw`` or ``Asia/Kuala_Lumpur``."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: expected an IANA name such as Europe/Warsaw"
            ) from None
        return value


class Config(Section):
    storage: StorageConfig = Field(default_factory=StorageConfig)
    brands: list[BrandConfig] = Field(min_length=1)
    sources: list[SourceConfig] = Field(default_factory=list)
    detection: DetectionConfig = Field(default_factory=DetectionConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    routes: list[RouteConfig] = Field(default_factory=list)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    sentiment: SentimentConfig = Field(default_factory=SentimentConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    console: ConsoleConfig | None = None
    display: DisplayConfig = Field(default_factory=DisplayConfig)

    def alert_secrets(self) -> list[tuple[str, str]]:
        """``(key path, variable name)`` of every secret the ``[alerts]`` sections use."""
        return _secrets(self.alerts, "alerts")

    def source_secrets(self) -> list[tuple[str, str, str]]:
        """``(source name, key, variable name)`` of every ``*_env`` an enabled source sets: a
        source that names a secret is meant to use it, so each is required to run."""
        return [
            (source.name, key, variable)
            for source in self.sources
            if source.enabled
            for key, variable in _secrets(source, "")
        ]

    def unset_source_secrets(self) -> list[str]:
        """One message per enabled source whose secret's environment variable is unset: such
        a source cannot run (a push endpoint would not even listen)."""
        return [
            f"source {name}: environment variable {variable} ({key}) is not set"
            for name, key, variable in self.source_secrets()
            if not os.environ.get(variable)
        ]

    def thresholds_for(self, brand: BrandConfig) -> DetectionConfig:
        """The ``[detection]`` settings with the brand's own overrides applied."""
        if not brand.detection:
            return self.detection
        return DetectionConfig.model_validate(
            {**self.detection.model_dump(exclude_unset=True), **brand.detection}
        )

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        for what, names in (
            ("brand", [b.name for b in self.brands]),
            ("source", [s.name for s in self.sources]),
        ):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise ValueError(f"{what} name {name!r} is used twice; names must be unique")
                seen.add(name)
        return self


def _secrets(model: BaseModel, path: str) -> list[tuple[str, str]]:
    """``(key path, variable name)`` of every ``*_env`` setting in ``model`` and its sections."""
    found: list[tuple[str, str]] = []
    for name, value in model:  # fields, then extra keys (the [alerts.<sink>] sections)
        where = f"{path}.{name}" if path else name
        if name.endswith("_env") and isinstance(value, str):
            found.append((where, value))
        elif isinstance(value, BaseModel):
            found += _secrets(value, where)
    return found


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    file: str
    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` lists every reason found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def default_config_text() -> str:
    return resources.files("monitor.data").joinpath("default.toml").read_text(encoding="utf-8")


def config_path(explicit: Path | None) -> Path | None:
    """The file to load: ``--config``, else ``$BRANDMON_CONFIG``, else None (embedded)."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    return Path(from_env) if from_env else None


def load_config(path: Path | None = None) -> Config:
    """Load and validate a config file, or the embedded defaults when ``path`` is None."""
    if path is None:
        return parse_config(default_config_text(), EMBEDDED)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), "", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigProblem(str(path), "", "not UTF-8 text")]) from None
    return parse_config(text, str(path))


def parse_config(text: str, filename: str) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise ConfigError([ConfigProblem(filename, "", f"invalid TOML: {exc}", line)]) from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines = _key_lines(text)
        problems = [_problem(filename, error, lines) for error in exc.errors()]
        raise ConfigError(problems) from None


def _problem(filename: str, error: Any, lines: dict[tuple[str | int, ...], int]) -> ConfigProblem:
    loc = tuple(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
        if any(word in str(loc[-1]).lower() for word in _SECRET_WORDS):
            message += (
                "; secrets are never read from the config file: set the matching *_env key "
                "to the name of an environment variable that holds it"
            )
    elif error["type"] == "source_type_unknown":
        return ConfigProblem(filename, _dotted(loc), message, _lookup_line(lines, (*loc, "type")))
    elif error["type"] == "missing":
        message = f"missing required key {loc[-1]!r}"
    return ConfigProblem(filename, _dotted(loc), message, _lookup_line(lines, loc))


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _lookup_line(lines: dict[tuple[str | int, ...], int], loc: tuple[str | int, ...]) -> int | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _line_from_message(message: str) -> int | None:
    found = re.search(r"line (\d+)", message)
    return int(found[1]) if found else None


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(
    r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)


def _split_key(key: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(r"\"[^\"]*\"|'[^']*'|[^.]+", key)]


def _in_arrays(
    names: tuple[str, ...], counts: dict[tuple[str | int, ...], int]
) -> tuple[str | int, ...]:
    """``[brands.detection]`` belongs to the latest ``[[brands]]``: ``brands[n].detection``."""
    path: tuple[str | int, ...] = ()
    for name in names[:-1]:
        path = (*path, name)
        if path in counts:
            path = (*path, counts[path])
    return (*path, names[-1])


def _key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Map key paths (with array-of-tables indices) to the line that sets them.

    ``tomllib`` keeps no positions, so this follows table headers and ``key =`` lines; it is
    good enough to point a support lead at the right line and simply finds nothing for exotic
    layouts.
    """
    lines: dict[tuple[str | int, ...], int] = {}
    counts: dict[tuple[str | int, ...], int] = {}
    table: tuple[str | int, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _HEADER.match(line):
            names = _in_arrays(tuple(_split_key(header[2])), counts)
            if header[1] == "[[":
                counts[names] = counts.get(names, -1) + 1
                table = (*names, counts[names])
            else:
                table = names
            lines.setdefault(table, number)
        elif assign := _ASSIGN.match(line):
            lines.setdefault((*table, *_split_key(assign[1])), number)
    return lines
