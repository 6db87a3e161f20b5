"""Readiness of servers that tests and benchmarks start (they give no signal other than answering)."""

from __future__ import annotations

import urllib.request


def http_ok(url: str) -> bool:
    """True if ``url`` answers 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False
