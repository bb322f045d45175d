"""The sinks named in ``[alerts] sinks``, built from their config sections.

Sink modules are imported only when configured, so a console-only install loads no Slack or
SMTP code.
"""

from __future__ import annotations

from alerts.base import Sink
from monitor.config import Config
from monitor.storage import Storage


def build_sinks(config: Config, storage: Storage) -> list[Sink]:
    alerts = config.alerts
    sinks: list[Sink] = []
    for name in alerts.sinks:
        if name == "console":
            from alerts.console import ConsoleSink

            sinks.append(ConsoleSink())
        elif name == "slack" and alerts.slack is not None:
            from alerts.slack import SlackSink

            sinks.append(SlackSink(config, storage))
        elif name == "webhook" and alerts.webhook is not None:
            from alerts.webhook import WebhookSink

            sinks.append(WebhookSink(alerts.webhook))
        elif name == "email" and alerts.email is not None:
            from alerts.email import EmailSink

            sinks.append(EmailSink(alerts.email))
    return sinks
