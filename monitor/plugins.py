"""Where brandmon finds its integrations: the connector serving each ``[[sources]] type`` and
the module building each sink named in ``[alerts] sinks``.

The core names them here as strings and imports one only when a config uses it: the core
imports no integration (the layers stay one-way, ``tests/test_layers.py``), and a deployment
loads only what it uses.  A connector class carries its own config section (``settings``), a
sink module its ``build``; adding either is its module plus one line here.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any

CONNECTORS: dict[str, str] = {
    "rss": "connectors.rss:RssConnector",
    "reddit": "connectors.reddit:RedditConnector",
    "hackernews": "connectors.hackernews:HackerNewsConnector",
    "mastodon": "connectors.mastodon:MastodonConnector",
    "bluesky": "connectors.bluesky:BlueskyConnector",
    "discourse": "connectors.discourse:DiscourseConnector",
    "telegram": "connectors.telegram:TelegramConnector",
    "weibo": "connectors.weibo:WeiboConnector",
    "youtube": "connectors.youtube:YouTubeConnector",
    "app_store": "connectors.app_store:AppStoreConnector",
    "google_play": "connectors.google_play:GooglePlayConnector",
    "trustpilot": "connectors.trustpilot:TrustpilotConnector",
    "x": "connectors.x:XConnector",
    "facebook_page": "connectors.facebook_page:FacebookPageConnector",
    "instagram": "connectors.instagram:InstagramConnector",
}
"""Polled source type -> ``module:ConnectorClass``."""

PUSH_TYPES = frozenset({"webhook"})
"""Source types that are not polled: other tools push their mentions to brandmon."""

SINKS: dict[str, str] = {
    "console": "alerts.console",
    "slack": "alerts.slack",
    "webhook": "alerts.webhook",
    "email": "alerts.email",
}
"""Sink name (as in ``[alerts] sinks``) -> the module whose ``build`` makes it."""

SECTIONLESS = frozenset({"console"})
"""Sinks that need no ``[alerts.<name>]`` section (every other one must have its section, so
that a config naming a sink it cannot build is an error found without importing the sink)."""


def connector_class(source_type: str) -> Any:
    """The connector class of a polled ``source_type``, imported now."""
    module, _, name = CONNECTORS[source_type].partition(":")
    return getattr(import_module(module), name)


def sink_module(name: str) -> ModuleType:
    """The module implementing sink ``name``, imported now."""
    return import_module(SINKS[name])
