"""The probe's version: the bridge_cffi distribution's, read without importing bridge_cffi
(whose extension the probe must be able to judge even when it cannot load).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

_VERSION_FILE = Path(__file__).resolve().parent.parent / "bridge_cffi" / "_version.py"


def probe_version() -> str:
    """The installed distribution's version, else the checkout's bridge_cffi/_version.py."""
    if _VERSION_FILE.is_file():  # a checkout (or editable install): the source of truth
        found = re.search(r'__version__ = "([^"]+)"', _VERSION_FILE.read_text())
        if found:
            return found.group(1)
    try:
        return metadata.version("bridge_cffi")
    except metadata.PackageNotFoundError:
        return "unknown"
