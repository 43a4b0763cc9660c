"""Diagnostics for benchmarks and tests: a second cffi extension holding the C entry points
that only they call (the push floor), so the production extension ``bridge_cffi._native``
carries none of them. Not a shipped package: setuptools installs ``bridge_cffi`` and
``abi_checks`` only, and this is built on demand into ``build/diagnostics/``.

    from diagnostics import load
    ffi, lib = load()   # built when missing or older than its sources; MXNet bound
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

BUILD = Path(__file__).resolve().parent.parent / "build" / "diagnostics"


def _built() -> Path | None:
    """The built extension, or None when there is none or a source is newer."""
    from diagnostics.build_diagnostics import INPUTS, MODULE

    found = sorted(BUILD.glob(f"{MODULE}.*.so"))
    if not found:
        return None
    built = found[-1]
    newest_input = max(path.stat().st_mtime for path in INPUTS)
    return built if built.stat().st_mtime >= newest_input else None


def _build() -> Path:
    """Compile the extension in a private directory, then move it into BUILD in one rename,
    so a concurrent loader sees either no extension or a whole one.
    """
    from diagnostics.build_diagnostics import make_builder

    BUILD.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="work-", dir=BUILD))
    try:
        logger.info("building the diagnostics extension into %s", BUILD)
        built = Path(make_builder().compile(tmpdir=str(work)))
        target = BUILD / built.name
        os.replace(built, target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


@cache
def load() -> tuple[Any, Any]:
    """The diagnostics extension's ``(ffi, lib)``, built first when stale, with MXNet's C API
    bound from the libmxnet this process loaded (``import mxnet`` happens here).
    """
    import mxnet

    from diagnostics.build_diagnostics import MODULE

    path = _built() or _build()
    spec = importlib.util.spec_from_file_location(MODULE, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the diagnostics extension {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ffi, lib = module.ffi, module.lib
    error = ffi.new("char[]", lib.BRIDGE_ERROR_CAPACITY)
    library = mxnet.base._LIB._name
    if lib.bridge_mxnet_bind(library.encode(), error) != lib.BRIDGE_OK:
        raise RuntimeError(f"diagnostics: binding {library}: {ffi.string(error).decode()}")
    return ffi, lib
