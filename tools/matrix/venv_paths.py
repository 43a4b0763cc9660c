"""Paths inside a cell's virtualenv, shortened: the results are committed, machine paths are not."""

from __future__ import annotations

import re
from typing import TypeVar, cast

_VENV_PATH = re.compile(r"/[^\s'\"()]*?/lib/python3\.\d+/site-packages/")


_T = TypeVar("_T")


def without_venv_paths(value: _T) -> _T:
    """Shorten every path inside a cell's virtualenv to ``site-packages/...`` (the JSON and the
    table are committed; the machine's directories say nothing). Returns a value of the same
    kind (str, list, dict, anything else as it was).
    """
    if isinstance(value, str):
        return cast(_T, _VENV_PATH.sub("site-packages/", value))
    if isinstance(value, list):
        return cast(_T, [without_venv_paths(item) for item in value])
    if isinstance(value, dict):
        return cast(_T, {key: without_venv_paths(item) for key, item in value.items()})
    return value
