"""Digit Insight Studio: read handwritten numbers with a compact CNN and show why."""

__version__ = "0.1.0"
