"""Where the dynamic loader looks for a library: ldconfig's cache and the default directories."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess

log = logging.getLogger(__name__)

#: Directories glibc's loader searches after the cache (plus Debian's multiarch ones, which
#: the cache normally covers; listed so a missing cache still finds libc).
DEFAULT_DIRS: tuple[str, ...] = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
)

_ARCH_TAG = "x86-64"  # what `ldconfig -p` prints for 64-bit x86 entries


@functools.lru_cache(maxsize=1)
def ldconfig_entries() -> tuple[tuple[str, str], ...]:
    """(soname, path) pairs from `ldconfig -p` for this machine's 64-bit x86 libraries."""
    exe = shutil.which("ldconfig") or (
        "/sbin/ldconfig" if os.path.exists("/sbin/ldconfig") else None
    )
    if exe is None:
        log.debug("ldconfig not found; using default directories only")
        return ()
    try:
        out = subprocess.run(
            [exe, "-p"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("ldconfig -p failed: %s", exc)
        return ()
    entries: list[tuple[str, str]] = []
    for line in out.splitlines()[1:]:
        name, sep, path = line.strip().partition(" => ")
        if not sep:
            continue
        soname, _, tags = name.partition(" (")
        # Keep 64-bit x86 entries only; the probe reads x86-64 wheels.
        if _ARCH_TAG in tags or "64" in tags:
            entries.append((soname.strip(), path.strip()))
    return tuple(entries)


def ldconfig_lookup(soname: str) -> str | None:
    """Path the ldconfig cache gives for `soname`, or None."""
    for name, path in ldconfig_entries():
        if name == soname:
            return path
    return None


def ld_library_path() -> list[str]:
    """Directories from LD_LIBRARY_PATH in order (empty entries mean the current directory)."""
    value = os.environ.get("LD_LIBRARY_PATH", "")
    if not value:
        return []
    return [p or "." for p in value.replace(";", ":").split(":")]


def system_library(soname: str) -> str | None:
    """The copy of `soname` a process gets without any RPATH or environment: cache, then dirs."""
    found = ldconfig_lookup(soname)
    if found and os.path.isfile(found):
        return found
    for directory in DEFAULT_DIRS:
        candidate = os.path.join(directory, soname)
        if os.path.isfile(candidate):
            return candidate
    return None


def expand_origin(entry: str, origin_dir: str) -> str:
    """Expand $ORIGIN / ${ORIGIN} (and $LIB as Debian's loader does) in an RPATH entry."""
    expanded = entry.replace("${ORIGIN}", origin_dir).replace("$ORIGIN", origin_dir)
    return expanded.replace("${LIB}", "lib/x86_64-linux-gnu").replace(
        "$LIB", "lib/x86_64-linux-gnu"
    )
