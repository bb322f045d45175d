"""brandmon — brand-mention monitoring and crisis alerts."""

__version__ = "0.1.0"
