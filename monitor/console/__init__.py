"""The web console ``brandmon run`` serves when ``[console]`` is configured: incidents, the
team's queue, mention search and labelling, as server-rendered pages (Jinja2 templates and a
style sheet shipped in this package; no script, nothing fetched from elsewhere)."""

from monitor.console.pages import Pages
from monitor.console.server import ConsoleServer

__all__ = ["ConsoleServer", "Pages"]
