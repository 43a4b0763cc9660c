"""Paths inside a cell's virtualenv, shortened: the results are committed, machine paths are not."""

from __future__ import annotations

import re

_VENV_PATH = re.compile(r"/[^\s'\"()]*?/lib/python3\.\d+/site-packages/")


def without_venv_paths(value: object) -> object:
    """Shorten every path inside a cell's virtualenv to ``site-packages/...`` (the JSON and the
    table are committed; the machine's directories say nothing).
    """
    if isinstance(value, str):
        return _VENV_PATH.sub("site-packages/", value)
    if isinstance(value, list):
        return [without_venv_paths(item) for item in value]
    if isinstance(value, dict):
        return {key: without_venv_paths(item) for key, item in value.items()}
    return value
