"""Headless Chromium for the tests that look at a page as a person would (the run report, gon explore)."""

from __future__ import annotations

import shutil

import pytest

#: offline and quiet: no GPU, no QUIC, no first-run, sync or update traffic
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """The browser's executable; skips the test where it is missing."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (scripts/setup.sh test installs the Debian package `chromium`)")
    return exe
