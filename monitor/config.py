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
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.detection_defaults import DEFAULTS
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


class _Section(BaseModel):
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


class StorageConfig(_Section):
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


class BrandConfig(_Section):
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


class SourceBase(_Section):
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


class RssSource(SourceBase):
    """Any RSS or Atom feed: Google Alerts, Google News searches, blogs, YouTube channels."""

    type: Literal["rss"]
    url: HttpUrl
    max_bytes: int = Field(default=5_000_000, ge=1_000)


class RedditSource(SourceBase):
    """Reddit search, newest first; keyless, so polite: polled at most once a minute, and a
    poll that pages back through a burst stops when ``x-ratelimit-remaining`` runs out."""

    type: Literal["reddit"]
    query: Query
    subreddit: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]{2,21}$")
    interval: Duration = timedelta(minutes=5)
    base_url: HttpUrl = "https://www.reddit.com"
    max_pages: int = Field(default=10, ge=1)
    """Pages of 100 one poll reads back towards the last post it stored."""

    @field_validator("interval")
    @classmethod
    def _polite(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=60):
            raise ValueError("Reddit asks keyless clients for at most one request a minute")
        return value


class HackerNewsSource(SourceBase):
    """The Algolia Hacker News search API (``search_by_date``), stories and comments."""

    type: Literal["hackernews"]
    query: Query
    tags: list[Literal["story", "comment"]] = Field(
        default_factory=lambda: ["story", "comment"], min_length=1
    )
    base_url: HttpUrl = "https://hn.algolia.com/api/v1"
    max_pages: int = Field(default=10, ge=1)
    """Pages of 100 one poll reads back towards the last item it stored."""


class MastodonSource(SourceBase):
    """A Mastodon instance's public hashtag timelines and, with a token, status search.

    A hashtag timeline is chronological and complete (every public post with the tag that
    reached the instance); search is ranked and sees only what the instance indexes, so follow
    a hashtag where one exists."""

    type: Literal["mastodon"]
    instance: HttpUrl
    hashtags: list[str] = Field(default_factory=list)
    query: Query | None = None
    token_env: EnvName | None = None
    max_pages: int = Field(default=10, ge=1)
    """Pages of 40 one poll reads back, per hashtag and for the search."""

    @model_validator(mode="after")
    def _something_to_follow(self) -> MastodonSource:
        if not self.hashtags and self.query is None:
            raise ValueError("give hashtags to follow, or a query (with token_env)")
        if self.query is not None and self.token_env is None:
            raise ValueError("status search needs token_env naming the access-token variable")
        return self


class BlueskySource(SourceBase):
    """``app.bsky.feed.searchPosts`` on an AppView (the public one by default)."""

    type: Literal["bluesky"]
    query: Query
    lang: str | None = None
    base_url: HttpUrl = "https://public.api.bsky.app"
    token_env: EnvName | None = None
    max_pages: int = Field(default=10, ge=1)
    """Pages of 100 one poll reads back towards the last post it stored."""


class YouTubeSource(SourceBase):
    """YouTube Data API v3: new videos matching a query, and their comment threads.

    The API key's project gets ``daily_quota`` units a day (10,000 unless Google granted more),
    renewed at midnight Pacific time.  A poll spends at most its share, ``poll_quota`` =
    ``daily_quota × interval / 24 h`` units, so a day of polls never spends more than the day
    has.  A poll that finds videos needs 102 units: the search (100), the videos' statistics (1)
    and their channels' subscriber counts (1); what is left of its share reads comments, one
    unit a video.  Sources sharing a key share its quota: split ``daily_quota`` between them.
    """

    type: Literal["youtube"]
    query: Query
    api_key_env: EnvName = "YOUTUBE_API_KEY"
    comments: bool = True
    max_videos: int = Field(default=10, ge=1, le=50)
    base_url: HttpUrl = "https://www.googleapis.com/youtube/v3"
    interval: Duration = timedelta(minutes=30)
    """Every 30 minutes a poll may spend 208 units: 106 comment threads after the 102."""
    daily_quota: int = Field(default=10_000, ge=1)

    @property
    def poll_quota(self) -> int:
        """Quota units one poll may spend: ``daily_quota × interval / 24 h``, rounded down."""
        return int(self.daily_quota * (self.interval / timedelta(days=1)))

    @model_validator(mode="after")
    def _quota_covers_a_poll(self) -> YouTubeSource:
        needed = 102  # search.list 100 + videos.list 1 + channels.list 1 (connectors/youtube.py)
        if self.poll_quota < needed:
            shortest = -(-needed * 1440 // self.daily_quota)  # minutes, rounded up
            every = self.interval.total_seconds() / 60
            raise ValueError(
                f"a poll every {every:g}m may spend {self.poll_quota} of the {self.daily_quota} "
                f"daily quota units, less than the {needed} a poll needs (a search costs 100): "
                f"poll every {shortest}m or more, or raise daily_quota"
            )
        return self


class XSource(SourceBase):
    """X API v2 recent search, with author follower counts."""

    type: Literal["x"]
    query: Query
    bearer_token_env: EnvName = "X_BEARER_TOKEN"
    base_url: HttpUrl = "https://api.x.com/2"
    interval: Duration = timedelta(minutes=15)
    max_pages: int = Field(default=10, ge=1)
    """Pages of 100 posts one poll may read to get back to the newest post of the last one."""


class WebhookSource(SourceBase):
    """An HTTP endpoint other tools push mentions to, authenticated by a shared secret."""

    type: Literal["webhook"]
    bind: str = "127.0.0.1"
    port: int = Field(default=8787, ge=1, le=65535)
    path: str = Field(default="/mentions", pattern=r"^/")
    secret_env: EnvName = "BRANDMON_WEBHOOK_SECRET"
    max_body_bytes: int = Field(default=1_000_000, ge=1_000)


SourceConfig = Annotated[
    RssSource
    | RedditSource
    | HackerNewsSource
    | MastodonSource
    | BlueskySource
    | YouTubeSource
    | XSource
    | WebhookSource,
    Field(discriminator="type"),
]
SOURCE_TYPES = tuple(
    model.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
    for model in get_args(get_args(SourceConfig)[0])
)


class Thresholds(_Section):
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


class SlackConfig(_Section):
    """Slack through the Web API with a bot token (``chat:write``)."""

    token_env: EnvName = "SLACK_BOT_TOKEN"
    channel: str = Field(min_length=1)
    channels: dict[Literal["watch", "warning", "crisis"], str] = Field(default_factory=dict)
    """Level → channel, where a level should go elsewhere than ``channel``."""
    crisis_mention: str | None = Field(
        default=None, pattern=r"^<!subteam\^[A-Z0-9]+>$|^<@[A-Z0-9]+>$|^<!here>$|^<!channel>$"
    )
    """Who to notify when an incident reaches ``crisis``, e.g. ``"<!subteam^S0123ABC>"``."""
    base_url: HttpUrl = "https://slack.com/api/"
    interactivity: HostPort | None = None
    """``host:port`` where the daemon answers Slack's button clicks (``/slack/actions``, behind
    the HTTPS address set as the app's Interactivity Request URL); no buttons when unset."""
    signing_secret_env: EnvName | None = None
    """The variable holding the app's signing secret, which every click must be signed with."""

    @model_validator(mode="after")
    def _signed(self) -> SlackConfig:
        if self.interactivity and not self.signing_secret_env:
            raise ValueError(
                "interactivity needs signing_secret_env: Slack signs every click with the app's "
                "signing secret, and unsigned clicks are refused"
            )
        return self


class WebhookSinkConfig(_Section):
    """POST each alert as JSON, signed with HMAC-SHA256 of the body."""

    url: HttpUrl
    secret_env: EnvName = "BRANDMON_ALERT_WEBHOOK_SECRET"
    timeout: Duration = timedelta(seconds=10)


class EmailConfig(_Section):
    """Alerts by email through an SMTP server."""

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    recipients: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    timeout: Duration = timedelta(seconds=20)


class AlertsConfig(_Section):
    sinks: list[Literal["console", "slack", "webhook", "email"]] = Field(
        default_factory=lambda: ["console"]
    )
    slack: SlackConfig | None = None
    webhook: WebhookSinkConfig | None = None
    email: EmailConfig | None = None

    @model_validator(mode="after")
    def _sinks_configured(self) -> AlertsConfig:
        for sink in self.sinks:
            if sink != "console" and getattr(self, sink) is None:
                raise ValueError(f'sink "{sink}" is listed but there is no [alerts.{sink}] section')
        return self


class RouteConfig(_Section):
    """Send one triage category (at or above a priority) to the team channel that answers it."""

    category: Category
    channel: str = Field(min_length=1)
    team: str | None = None
    min_priority: Priority = "P4"


class ServiceConfig(_Section):
    """How the daemon runs: its health/metrics endpoint and log format."""

    health: HostPort | None = None
    """``host:port`` for ``/healthz`` and ``/metrics``; off when unset."""
    log_format: Literal["auto", "json", "text"] = "auto"

    @property
    def health_address(self) -> tuple[str, int] | None:
        return None if self.health is None else address(self.health)


class NetworkConfig(_Section):
    """Where sources may connect.  Feed and API URLs come from users; by default none may
    reach a loopback, private or link-local address (directly or by redirect)."""

    block_private: bool = True
    allow_networks: list[IPv4Network | IPv6Network] = Field(default_factory=list)
    """Exceptions, e.g. ``["10.20.0.0/16"]`` for an internal feed server."""
    max_concurrent_polls: int = Field(default=32, ge=1, le=500)


class ReportConfig(_Section):
    """Where the HTML reports are published (``brandmon report --out DIR/<brand>.html``)."""

    base_url: HttpUrl | None = None
    """Slack's "Open report" button links to ``<base_url><brand>.html``."""


class SentimentConfig(_Section):
    """The team's own sentiment models."""

    models: Path | None = None
    """The directory ``brandmon train`` writes the models it trained on the team's labels to;
    a language's model there is used instead of the shipped one."""


class Config(_Section):
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
    for name in type(model).model_fields:
        value = getattr(model, name)
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
    loc = _data_path(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
        if any(word in str(loc[-1]).lower() for word in _SECRET_WORDS):
            message += (
                "; secrets are never read from the config file: set the matching *_env key "
                "to the name of an environment variable that holds it"
            )
    elif error["type"] == "union_tag_invalid":
        message = f"unknown source type {error['input'].get('type')!r} (known: {_known_types()})"
        return ConfigProblem(filename, _dotted(loc), message, _lookup_line(lines, (*loc, "type")))
    elif error["type"] == "union_tag_not_found":
        message = f"missing key 'type' (known: {_known_types()})"
    elif error["type"] == "missing":
        message = f"missing required key {loc[-1]!r}"
    return ConfigProblem(filename, _dotted(loc), message, _lookup_line(lines, loc))


def _known_types() -> str:
    return ", ".join(sorted(SOURCE_TYPES))


def _data_path(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Drop the discriminator tags pydantic puts in locations (``sources.0.rss.url``)."""
    path: list[str | int] = []
    for i, part in enumerate(loc):
        if i >= 2 and loc[i - 2] == "sources" and isinstance(loc[i - 1], int):
            continue
        path.append(part)
    return tuple(path)


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
