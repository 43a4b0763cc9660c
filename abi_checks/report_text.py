"""The human report: one table per library, the child's findings, then the verdicts."""

from __future__ import annotations

import textwrap

from abi_checks.facts import DynamicFacts, Facts, LibraryFacts, SelfTest, Verdict

_WIDTH = 100
_KEY = 22


def _row(key: str, value: str) -> list[str]:
    lines = textwrap.wrap(
        value, _WIDTH - _KEY - 2, break_long_words=False, break_on_hyphens=False
    ) or [""]
    out = [f"  {key:<{_KEY}}{lines[0]}"]
    out += [f"  {'':<{_KEY}}{line}" for line in lines[1:]]
    return out


def _versions(d: dict[str, str]) -> str:
    return ", ".join(d[k] for k in ("GLIBC", "GLIBCXX", "CXXABI") if k in d) or "-"


def library_table(key: str, lib: LibraryFacts) -> list[str]:
    """Rows describing one library (its copies, build facts and loadability)."""
    out = [f"== {lib.name} ({lib.role}) ==" if key == lib.role else f"== {key} ({lib.role}) =="]
    out += _row("path", lib.path or "not found")
    if lib.package_version:
        out += _row("version", lib.package_version)
    for i, copy in enumerate(lib.copies):
        flags = [f for f in ("predicted", "mapped") if getattr(copy, f)]
        if copy.same_file_as:
            flags.append(f"same file as {copy.same_file_as}")
        if copy.realpath != copy.path:
            flags.append(f"-> {copy.realpath}")
        text = f"{copy.path} [{', '.join(copy.sources)}]" + (
            f" ({'; '.join(flags)})" if flags else ""
        )
        out += _row("copies" if i == 0 else "", text)
    if lib.error:
        out += _row("error", lib.error)
    s = lib.static
    if s is None:
        return out
    if s.read_from != "sections":
        out += _row("read from", "program headers (PT_DYNAMIC segment)")
        for note in s.read_notes:
            out += _row("note", note)
    compiler = f"{s.compiler.family} {s.compiler.version}" if s.compiler.family else "unknown"
    out += _row("compiler", compiler)
    abi = {"cxx11": "C++11", "old": "old (pre-C++11)", "none": "no C++ symbols"}[s.string_abi]
    out += _row(
        "std::string ABI", f"{abi} ({s.cxx11_symbols} __cxx11 / {s.cpp_symbols} C++ symbols)"
    )
    out += _row("needs newest", _versions(s.needs_newest))
    out += _row("system provides", _versions(s.system_provides_newest))
    out += _row("NEEDED", " ".join(s.needed) or "-")
    if s.rpath or s.runpath:
        out += _row("RPATH / RUNPATH", f"{':'.join(s.rpath) or '-'} / {':'.join(s.runpath) or '-'}")
    if s.tvm_generation:
        out += _row("TVM generation", _GENERATION_TEXT.get(s.tvm_generation, s.tvm_generation))
    out += _row("required missing", ", ".join(s.required_symbols_missing) or "none")
    out += _row("optional missing", ", ".join(s.optional_symbols_missing) or "none")
    if lib.role == "mxnet":
        out += _row("MXTVMBridge", "exported" if s.exports_legacy_bridge else "not exported")
    out += _row("loads", "yes" if s.loadable else "NO")
    for problem in s.problems:
        out += _row("problem", problem)
    for remedy in s.remedies:
        out += _row("remedy", remedy)
    return out


_GENERATION_TEXT = {
    "packed-func": "PackedFunc (TVM < 0.20: exports TVMFuncCall)",
    "tvm-ffi": "tvm-ffi (TVM >= 0.20: links libtvm_ffi.so)",
}


def _test(name: str, test: SelfTest) -> list[str]:
    mark = {True: "pass", False: "FAIL", None: "n/a"}[test.ok]
    return _row(name, f"{mark}: {test.detail}")


def _imported(version: str | None, error: str | None) -> str:
    if version:
        return version
    return f"import failed: {error}" if error else "not imported"


def dynamic_table(dyn: DynamicFacts) -> list[str]:
    """Rows describing what the child process saw."""
    out = ["== child process (import mxnet, tvm_ffi, tvm) =="]
    if dyn.error:
        out += _row("error", dyn.error)
    out += _row("mxnet", _imported(dyn.mxnet_version, dyn.mxnet_error))
    if dyn.mxnet_lib_path:
        out += _row("mxnet library", dyn.mxnet_lib_path)
    on = [k for k, v in dyn.mxnet_features.items() if v]
    if dyn.mxnet_features:
        out += _row("mxnet features", " ".join(on) or "none")
    out += _row("tvm_ffi", _imported(dyn.tvm_ffi_version, dyn.tvm_ffi_error))
    out += _row("tvm", _imported(dyn.tvm_version, dyn.tvm_error))
    out += _test("DLPack layout", dyn.dlpack_layout)
    out += _test("view identity", dyn.view_identity)
    out += _test("throw symbol", dyn.throw_symbol)
    out += _row("bridge extension", dyn.bridge_detail)
    if dyn.bridge_import_error:
        out += _row("bridge import", f"FAILED: {dyn.bridge_import_error}")
    if dyn.bridge_available:
        out += _test("bridge run context", dyn.bridge_run_context_layout)
        out += _test("bridge view identity", dyn.bridge_view_identity)
        out += _row("bridge error mode", dyn.bridge_error_mode or "n/a")
        out += _row("gpu", f"{dyn.gpu.status}: {dyn.gpu.detail}")
    if dyn.legacy_bridge_trial:
        out += _row("MXTVMBridge trial", dyn.legacy_bridge_trial)
    return out


def verdict_block(verdicts: list[Verdict]) -> list[str]:
    """The verdicts with their reasons and remedies."""
    out = ["== verdicts =="]
    for v in verdicts:
        out.append(f"  {v.name:<24}{v.status.upper()}")
        for reason in v.reasons:
            out += [
                "    - " + line if i == 0 else "      " + line
                for i, line in enumerate(textwrap.wrap(reason, _WIDTH - 6))
            ]
        for remedy in v.remedy:
            out += [
                "    > " + line if i == 0 else "      " + line
                for i, line in enumerate(textwrap.wrap(remedy, _WIDTH - 6))
            ]
    return out


_MEANINGS = {
    "full": {0: "all good", 1: "works with degradations", 2: "the bridge cannot work here"},
    "static": {
        0: "every file loads and exports what its role needs",
        1: "optional symbols missing",
        2: "a file would not load or lacks required symbols",
    },
}


def render(facts: Facts, verdicts: list[Verdict], code: int, mode: str = "full") -> str:
    """The whole human report."""
    out: list[str] = []
    for key, lib in facts.libraries.items():
        out += [*library_table(key, lib), ""]
    if facts.dynamic is not None:
        out += [*dynamic_table(facts.dynamic), ""]
    if verdicts:
        out += [*verdict_block(verdicts), ""]
    out.append(f"exit code {code}: {_MEANINGS[mode].get(code, '')}")
    return "\n".join(out) + "\n"
