"""Which connector class serves which ``[[sources]] type``.

Connector modules are imported when a source of their type is configured, so a deployment
only loads what it uses.
"""

from __future__ import annotations

from importlib import import_module

from connectors.base import Connector
from monitor.config import SourceConfig

CONNECTORS: dict[str, str] = {
    "rss": "connectors.rss:RssConnector",
    "reddit": "connectors.reddit:RedditConnector",
    "hackernews": "connectors.hackernews:HackerNewsConnector",
    "mastodon": "connectors.mastodon:MastodonConnector",
    "bluesky": "connectors.bluesky:BlueskyConnector",
    "youtube": "connectors.youtube:YouTubeConnector",
    "x": "connectors.x:XConnector",
}


PUSH_TYPES = frozenset({"webhook"})
"""Source types that are not polled: other tools push their mentions to brandmon."""


def build_connector(source: SourceConfig) -> Connector:
    """The connector for a polled source (push sources such as ``webhook`` have none)."""
    module, _, name = CONNECTORS[source.type].partition(":")
    return getattr(import_module(module), name)(source)
