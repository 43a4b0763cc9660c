"""The shared objects this process has mapped, read from ``/proc/self/maps``."""

from __future__ import annotations

from pathlib import Path

#: Fields of a /proc/self/maps line: address, perms, offset, dev, inode, pathname.
_MAPS_FIELDS = 6


def mapped_shared_objects() -> list[str]:
    """Paths of the mapped files whose name holds ``.so``, in first-mapped order, once each."""
    paths: list[str] = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                fields = line.split(None, _MAPS_FIELDS - 1)
                if len(fields) == _MAPS_FIELDS and ".so" in Path(fields[5].strip()).name:
                    path = fields[5].strip()
                    if path not in paths:
                        paths.append(path)
    except OSError:
        return paths
    return paths


def mapped_library_path(stem: str) -> str | None:
    """The path of the first mapped file named ``stem``*.so* in this process, if any."""
    return next(
        (path for path in mapped_shared_objects() if Path(path).name.startswith(stem + ".so")),
        None,
    )


def mapped_libraries_named(*stems: str) -> list[str]:
    """Every mapped file named ``<stem>.so``* for any of ``stems``."""
    return [
        path
        for path in mapped_shared_objects()
        if any(Path(path).name.startswith(stem + ".so") for stem in stems)
    ]
