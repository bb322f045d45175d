"""Alerts by email through an SMTP server.

The subject says the level, brand and numbers; the body is the console rendering.  Every message
of one incident refers to the incident's own Message-ID (``In-Reply-To``/``References``), so mail
clients thread escalations and the resolution under the first page; each message's own
Message-ID comes from its alert key, so a re-sent alert is recognisable as the same message.
"""

from __future__ import annotations

import hashlib
import logging
import os
import smtplib
from datetime import timedelta
from email.message import EmailMessage
from typing import Annotated, Literal

from pydantic import Field

from alerts.base import Alert, SinkError
from alerts.console import render
from monitor.alert import MentionPayload, TestPayload, UndeliverablePayload
from monitor.config import Config, Duration, EnvName, Section
from monitor.storage import Storage

log = logging.getLogger(__name__)


class EmailConfig(Section):
    """Alerts by email through an SMTP server."""

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    recipients: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    timeout: Duration = timedelta(seconds=20)


SECTION = EmailConfig
"""The class of this sink's ``[alerts.email]`` section."""


def build(config: Config, storage: Storage) -> EmailSink | None:
    """The email sink from ``[alerts.email]`` (``alerts.sinks``), if there is one."""
    section = config.alerts.section("email")
    return None if section is None else EmailSink(section)


class EmailSink:
    name = "email"

    def __init__(self, config: EmailConfig) -> None:
        self.config = config

    def send(self, alert: Alert) -> None:
        message = self.message(alert)
        login = self._login()
        config = self.config
        timeout = config.timeout.total_seconds()
        try:
            if config.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.port, timeout=timeout)
            else:
                smtp = smtplib.SMTP(config.host, config.port, timeout=timeout)
            with smtp:
                if config.security == "starttls":
                    smtp.starttls()
                if login is not None:
                    smtp.login(*login)
                refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused:
            raise SinkError(f"{config.host} refused every recipient") from None
        except smtplib.SMTPResponseException as exc:
            raise SinkError(f"{config.host} refused the message: {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise SinkError(f"cannot send through {config.host}: {type(exc).__name__}") from None
        if refused:  # the others have it: sending again would duplicate it for them
            log.warning("email: %s refused recipient(s) %s", config.host, ", ".join(refused))

    def message(self, alert: Alert) -> EmailMessage:
        domain = self.config.sender.rsplit("@", 1)[1]
        message = EmailMessage()
        message["From"] = self.config.sender
        message["To"] = ", ".join(self.config.recipients)
        message["Subject"] = subject(alert)
        message["Message-ID"] = f"<{_digest(alert.key)}@{domain}>"
        incident = getattr(alert.payload, "incident_id", None)
        if incident is not None:
            thread = f"<{_digest(f'{alert.brand}:incident:{incident}')}@{domain}>"
            message["In-Reply-To"] = thread
            message["References"] = thread
        message.set_content(render(alert) + "\n")
        return message

    def _login(self) -> tuple[str, str] | None:
        names = (self.config.username_env, self.config.password_env)
        if names == (None, None):
            return None
        values = []
        for name in names:
            value = os.environ.get(name or "")
            if not value:
                raise SinkError(f"environment variable {name} is not set")
            values.append(value)
        return values[0], values[1]


def subject(alert: Alert) -> str:
    p = alert.payload
    if isinstance(p, TestPayload):
        return f"[TEST] brandmon test alert for {alert.brand}"
    if isinstance(p, UndeliverablePayload):
        return f"[UNDELIVERABLE] {alert.brand}: an alert could not be delivered to {p.sink}"
    if isinstance(p, MentionPayload):
        return f"[LOUD] {alert.brand}: a high-reach complaint during incident #{p.incident_id}"
    if alert.kind == "resolved":
        return f"[RESOLVED] {alert.brand}: incident #{p.incident_id} is over"
    return (
        f"[{p.level.upper()}] {alert.brand}: {p.negative:g} negative mentions "
        f"in {p.window_minutes} min"
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]
