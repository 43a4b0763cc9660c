"""What a package owes its users: one version, the C header, typing marker, `-m` entry."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import bridge_cffi
from conftest import REPO


def test_one_version_everywhere() -> None:
    assert bridge_cffi.__version__ == metadata.version("bridge_cffi")
    from abi_checks.version import probe_version

    assert probe_version() == bridge_cffi.__version__


def test_get_include_holds_the_protocol_header_of_this_source() -> None:
    header = Path(bridge_cffi.get_include()) / "bridge_cffi" / "protocol.h"
    source = REPO / "csrc" / "include" / "bridge_cffi" / "protocol.h"
    assert header.read_text() == source.read_text()


def test_packages_are_marked_typed() -> None:
    for package in ("bridge_cffi", "abi_checks"):
        assert (REPO / package / "py.typed").is_file()


def test_python_m_bridge_cffi_prints_the_version_and_the_verdicts() -> None:
    done = subprocess.run([sys.executable, "-m", "bridge_cffi"], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"bridge_cffi {bridge_cffi.__version__} ")
    assert [line.split()[0] for line in lines[1:4]] == [
        "bridge-async", "bridge-recorded-errors", "legacy-mxtvmbridge"
    ]
    assert lines[1].split()[1] == "OK"
