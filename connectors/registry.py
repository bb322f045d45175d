"""Building the connector of a configured source (``monitor.plugins`` names them)."""

from __future__ import annotations

from connectors.base import Connector
from monitor.config import SourceBase
from monitor.plugins import connector_class


def build_connector(source: SourceBase) -> Connector:
    """The connector for a polled source (push sources such as ``webhook`` have none)."""
    return connector_class(source.type)(source)
