"""Command line: `python -m abi_checks [--json] [--static PATH...] [--no-dynamic]`.

Exit codes: 0 all good, 1 works with degradations, 2 the bridge cannot work here (with
--static: a file would not load or lacks its role's required symbols, or a path is not a
readable ELF file, reported as one line on stderr), 64 a usage error (sysexits' EX_USAGE:
argparse's own 2 would read as "the bridge cannot work here").
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

from abi_checks import collect, dynamic, report_json, report_text, verdicts
from abi_checks.elf_static import ElfReadError, read_elf
from abi_checks.facts import Facts, LibraryFacts, Verdict
from abi_checks.static_probe import probe_file, role_of, wheel_context
from abi_checks.version import probe_version

PROG = "abi-checks"

#: sysexits.h EX_USAGE: the command line was wrong (not a verdict about this machine).
EXIT_USAGE = 64

_EPILOG = (
    "exit codes: 0 all good; 1 works with degradations; 2 the bridge cannot work here (with "
    "--static: a file would not load, lacks required symbols, or is not a readable ELF file); "
    f"{EXIT_USAGE} usage error"
)


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on their own exit code."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Check whether bridge_cffi (and the legacy MXTVMBridge) can work with the "
        "MXNet and TVM this Python would load.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {probe_version()}")
    parser.add_argument(
        "--json", action="store_true", help="print the report as JSON (see SCHEMA.md)"
    )
    parser.add_argument(
        "--static",
        nargs="+",
        metavar="PATH",
        help="only read these ELF files (never loads or runs them)",
    )
    parser.add_argument(
        "--preload",
        nargs="+",
        metavar="LIB",
        default=[],
        help="with --static: libraries loaded before the files (as `import tvm` loads "
        "libtvm_ffi.so first)",
    )
    parser.add_argument(
        "--no-dynamic",
        action="store_true",
        help="skip the child process (no imports, no self-tests)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=dynamic.DEFAULT_TIMEOUT_S,
        help="seconds the child process may take (default %(default)s)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    return parser


def _readable(path: str) -> str:
    if os.path.isdir(path):
        raise ElfReadError(f"{path}: is a directory")
    info = read_elf(path)  # fail fast, before any output
    return info.soname or os.path.basename(path)


def static_facts(paths: list[str], preload: list[str] | None = None) -> Facts:
    """Facts for the given files, keyed by path; raises ElfReadError on the first bad one.

    `preload` lists libraries the process would have loaded before (they satisfy DT_NEEDED
    and export symbols); a TVM library in a site-packages also gets the sibling libtvm_ffi.so.
    """
    for path in paths:
        _readable(path)
    explicit = {_readable(p): os.path.abspath(p) for p in preload or []}
    facts = Facts(system=collect.system_facts())
    for path in paths:
        role = role_of(path, read_elf(path))
        preloaded, tvm_version = wheel_context(path, role)
        preloaded.update(explicit)
        facts.libraries[path] = LibraryFacts(
            role=role,
            name=os.path.basename(path),
            path=os.path.abspath(path),
            package_version=tvm_version,
            static=probe_file(path, role, preloaded, tvm_version),
        )
    return facts


def static_exit_code(facts: Facts) -> int:
    """2 if a file would not load or lacks required symbols, 1 if optional ones are missing."""
    code = verdicts.EXIT_OK
    for lib in facts.libraries.values():
        s = lib.static
        if s is None or not s.loadable or s.required_symbols_missing:
            return verdicts.EXIT_BROKEN
        if s.optional_symbols_missing:
            code = verdicts.EXIT_DEGRADED
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the probe and print the report; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format=f"{PROG}: %(message)s"
    )
    if args.static:
        try:
            facts = static_facts(args.static, args.preload)
        except ElfReadError as exc:
            sys.stderr.write(f"{PROG}: error: {exc}\n")
            return verdicts.EXIT_BROKEN
        found: list[Verdict] = []
        code = static_exit_code(facts)
        mode = "static"
    else:
        facts = collect.collect(run_dynamic=not args.no_dynamic, timeout_s=args.timeout)
        found = verdicts.evaluate(facts)
        code = verdicts.exit_code(found)
        if facts.dynamic is not None and facts.dynamic.error and code == verdicts.EXIT_OK:
            code = verdicts.EXIT_DEGRADED
        mode = "full"
    if args.json:
        sys.stdout.write(report_json.render(mode, facts, found, code) + "\n")
    else:
        sys.stdout.write(report_text.render(facts, found, code, mode))
    return code
