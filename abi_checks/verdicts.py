"""Verdicts: a pure function of Facts, so every rule can be tested from hand-made facts.

Statuses, best to worst: ok, degraded (works, something is missing or slower), unavailable
(cannot run here), unsafe (would run but compute garbage or corrupt memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from packaging.version import InvalidVersion, Version

from abi_checks import requirements
from abi_checks.facts import DynamicFacts, Facts, LibraryFacts, StaticFacts, Verdict

BRIDGE_ASYNC = "bridge-async"
BRIDGE_RECORDED = "bridge-recorded-errors"
LEGACY = "legacy-mxtvmbridge"
OPERATORS = "bridge-operators"

EXIT_OK, EXIT_DEGRADED, EXIT_BROKEN = 0, 1, 2


@dataclass
class _Findings:
    blockers: list[str] = field(default_factory=list)  # -> unavailable
    unsafe: list[str] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # neither passed nor failed: not checked
    remedy: list[str] = field(default_factory=list)


def _static(facts: Facts, role: str) -> tuple[LibraryFacts | None, StaticFacts | None]:
    lib = facts.libraries.get(role)
    return lib, (lib.static if lib else None)


def mxnet_version(facts: Facts) -> Version | None:
    """MXNet's version: MXGetVersion from the child if it ran, else the package metadata."""
    dyn = facts.dynamic
    if dyn and dyn.mxnet_version_code:
        return requirements.decode_mxnet_version(dyn.mxnet_version_code)
    lib = facts.libraries.get("mxnet")
    return _parse(lib.package_version if lib else None)


def tvm_version(facts: Facts) -> Version | None:
    """TVM's version: what `import tvm` reported, else the package metadata."""
    if facts.dynamic and facts.dynamic.tvm_version:
        return _parse(facts.dynamic.tvm_version)
    for role in ("tvm_runtime", "tvm"):
        lib = facts.libraries.get(role)
        if lib and lib.package_version:
            return _parse(lib.package_version)
    return None


def _parse(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def _read_from(s: StaticFacts) -> str:
    if s.read_from == "sections":
        return ""
    return " (read from the program headers: its section header table is unusable)"


def _bridge_prerequisites(facts: Facts, require_tvm_ffi: bool = True) -> _Findings:
    """What both bridge modes need: MXNet and tvm-ffi present, recent, loadable, sane layout."""
    out = _Findings()
    dyn = facts.dynamic
    mx_lib, mx = _static(facts, "mxnet")
    version = mxnet_version(facts)
    if mx_lib is None or mx_lib.path is None:
        out.blockers.append("libmxnet.so not found (is mxnet installed in this Python?)")
        out.remedy.append("pip install mxnet==1.9.1 'numpy<1.24'")
    elif version is not None and (problem := requirements.mxnet_version_problem(version)):
        out.blockers.append(problem)
    elif version is not None:
        out.passed.append(f"MXNet {version} >= {requirements.MIN_MXNET_VERSION}")
    if mx is not None:
        if mx.required_symbols_missing:
            out.blockers.append(
                f"{mx_lib.path if mx_lib else 'libmxnet.so'} does not export "
                + ", ".join(mx.required_symbols_missing)
            )
            out.remedy += mx.remedies
        else:
            out.passed.append("libmxnet.so exports every required C symbol" + _read_from(mx))
        if not mx.loadable:
            out.blockers += mx.problems
            out.remedy += mx.remedies
    if dyn and dyn.mxnet_error:
        out.blockers.append(f"import mxnet failed in a child process: {dyn.mxnet_error}")
    if facts.tvm_generation() == requirements.PACKED_FUNC_GENERATION:
        # A TVM of the PackedFunc generation runs through the PackedFunc producer: tvm-ffi is
        # then only needed for tvm-ffi functions, not for this TVM's own.
        require_tvm_ffi = False
        _packed_func_checks(facts, out)
    ffi_lib, ffi = _static(facts, "tvm_ffi")
    if (ffi_lib is None or ffi_lib.path is None) and require_tvm_ffi:
        if facts.tvm_library() is None:
            # No TVM at all: C protocol kernels (load_c_kernel) still run on the engine.
            out.degraded.append(
                "no TVM found (neither libtvm_ffi.so nor a TVM runtime): only C protocol kernels "
                "(bridge_cffi.load_c_kernel) can run"
            )
            out.remedy.append("for TVM functions: pip install 'bridge_cffi[stack]'")
            require_tvm_ffi = False
        else:
            out.blockers.append("libtvm_ffi.so not found (is apache-tvm-ffi installed?)")
            out.remedy.append("pip install apache-tvm-ffi")
    elif ffi is not None:
        if ffi.required_symbols_missing:
            out.blockers.append(
                "libtvm_ffi.so does not export " + ", ".join(ffi.required_symbols_missing)
            )
        else:
            out.passed.append("libtvm_ffi.so exports every required C symbol" + _read_from(ffi))
        if not ffi.loadable:
            out.blockers += ffi.problems
            out.remedy += ffi.remedies
    if dyn and dyn.tvm_ffi_error:
        failure = f"import tvm_ffi failed in a child process: {dyn.tvm_ffi_error}"
        if require_tvm_ffi:
            out.blockers.append(failure)
        else:
            out.notes.append(failure + " (only tvm-ffi functions need it)")
    _extension_checks(facts, out)
    _bridge_import_checks(dyn, out)
    _layout_checks(dyn, out)
    return out


def _packed_func_checks(facts: Facts, out: _Findings) -> None:
    """A TVM of the PackedFunc generation: the C symbols its producer calls."""
    library = facts.tvm_library()
    assert library is not None and library.static is not None
    s = library.static
    if s.required_symbols_missing:
        out.blockers.append(
            f"{library.name} (PackedFunc generation) does not export "
            + ", ".join(s.required_symbols_missing)
        )
        return
    out.passed.append(
        f"{library.name} is a TVM of the PackedFunc generation (TVM < 0.20) and exports every C "
        "symbol the PackedFunc producer calls" + _read_from(s)
    )
    if s.optional_symbols_missing:
        out.degraded.append(
            f"optional {library.name} symbols missing: "
            + requirements.what_is_degraded(s.optional_symbols_missing)
        )
    if not s.loadable:
        out.blockers += s.problems
        out.remedy += s.remedies


def _bridge_import_checks(dyn: DynamicFacts | None, out: _Findings) -> None:
    # Installed (the compiled extension exists) but not importable blocks the bridge; not
    # installed or not built is only a note, so the probe can judge the libraries without it.
    if dyn is None or dyn.bridge_available:
        return
    if dyn.bridge_import_error:
        out.blockers.append(
            f"import bridge_cffi failed in a child process: {dyn.bridge_import_error}"
        )
        out.remedy.append(
            "run `python -c 'import bridge_cffi'` for the traceback, then install what it is "
            "missing or reinstall bridge_cffi for this Python and this MXNet"
        )
    else:
        out.notes.append(f"bridge self-tests not run: {dyn.bridge_detail}")


def _extension_checks(facts: Facts, out: _Findings) -> None:
    # The verdicts judge the libraries; an extension not built yet is an install step, not a
    # property of this MXNet/TVM pair. One that is built but cannot load blocks the bridge.
    ext_lib, ext = _static(facts, "bridge_extension")
    if ext_lib is None:
        return
    if ext is None:
        out.notes.append(f"bridge extension: {ext_lib.error or 'not found'} (not built yet?)")
    elif not ext.loadable:
        out.blockers += [f"bridge extension: {p}" for p in ext.problems]
        out.remedy += ext.remedies
    else:
        out.passed.append(f"bridge extension {ext_lib.path} loads")


def _layout_checks(dyn: DynamicFacts | None, out: _Findings) -> None:
    if dyn is None:
        out.degraded.append(
            "layout self-tests not run (dynamic layer skipped): the bridge refuses arguments "
            "whose storage might be shared instead of relying on view identity"
        )
        return
    if dyn.error:
        out.degraded.append(f"dynamic probe incomplete: {dyn.error}")
    for test in (dyn.dlpack_layout, dyn.view_identity, dyn.bridge_view_identity):
        if test.ok is False:
            out.unsafe.append(test.detail)
        elif test.ok:
            out.passed.append(test.detail)
    if dyn.view_identity.ok is None and not dyn.mxnet_error:
        out.degraded.append(
            f"{dyn.view_identity.detail}: aliasing detection falls back to refusing"
        )
    rc = dyn.bridge_run_context_layout
    if rc.ok is False:
        # RunContext is only read for the GPU stream; a CPU-only build never touches it.
        if dyn.mxnet_features.get("CUDA"):
            out.degraded.append(
                f"run-context layout self-test failed ({rc.detail}): GPU stream unusable"
            )
        else:
            out.passed.append(
                f"run-context layout self-test failed ({rc.detail}); unused: MXNet has no CUDA"
            )
    elif rc.ok:
        out.passed.append("run-context layout self-test passed")
    if dyn.gpu.status == "confirmed":
        out.passed.append(f"GPU stream self-test confirmed: {dyn.gpu.detail}")
    elif dyn.gpu.status == "not confirmed":
        out.degraded.append(
            f"GPU stream self-test not confirmed ({dyn.gpu.detail}): GPU arrays are refused"
        )


def blocking_reasons(facts: Facts, require_tvm_ffi: bool = True) -> list[str]:
    """Why neither bridge mode can work (unavailable or unsafe findings); empty list = fine."""
    findings = _bridge_prerequisites(facts, require_tvm_ffi)
    return findings.blockers + findings.unsafe


def _throw_available(facts: Facts) -> bool | None:
    dyn = facts.dynamic
    if dyn and dyn.throw_symbol.ok is not None:
        return dyn.throw_symbol.ok
    _, mx = _static(facts, "mxnet")
    return mx.throw_symbol_in_tree if mx else None


def _status(f: _Findings) -> str:
    if f.blockers:
        return "unavailable"
    if f.unsafe:
        return "unsafe"
    return "degraded" if f.degraded else "ok"


def _reasons(f: _Findings) -> list[str]:
    # Only the findings that set the status: degradations do not matter when it cannot run.
    for findings in (f.blockers, f.unsafe, f.degraded):
        if findings:
            return list(findings)
    return f.passed + [f"note: {note}" for note in f.notes]


def bridge_async(facts: Facts) -> Verdict:
    """This bridge, pushing work to MXNet's engine and raising errors inside it."""
    f = _bridge_prerequisites(facts)
    throw = _throw_available(facts)
    dyn = facts.dynamic
    if throw is False:
        f.degraded.append(
            f"{requirements.ENGINE_THROW_SYMBOL} is not resolvable from libmxnet.so: errors are "
            "recorded and raised at the next bridged call or synchronize() (bridge-recorded-errors)"
        )
    elif throw:
        f.passed.append(
            "libstdc++'s __throw_runtime_error is resolvable: errors reach MXNet's engine"
        )
    if dyn and dyn.bridge_error_mode == "recorded" and throw:
        f.degraded.append(
            "the bridge reports recorded-error mode although the throw symbol resolves"
        )
    _, mx = _static(facts, "mxnet")
    if mx and mx.optional_symbols_missing:
        f.degraded.append(
            "optional MXNet symbols missing: "
            + requirements.what_is_degraded(mx.optional_symbols_missing)
        )
    _, ffi = _static(facts, "tvm_ffi")
    if ffi and ffi.optional_symbols_missing:
        f.degraded.append(
            "optional tvm-ffi symbols missing: "
            + requirements.what_is_degraded(ffi.optional_symbols_missing)
        )
    if dyn and dyn.tvm_error and not dyn.tvm_ffi_error:
        f.degraded.append(
            f"import tvm fails ({dyn.tvm_error}): only already-built tvm-ffi functions can run"
        )
        _, rt = _static(facts, "tvm_runtime")
        if rt is not None and not rt.loadable:
            f.degraded += rt.problems
            f.remedy += rt.remedies
    return Verdict(BRIDGE_ASYNC, _status(f), _reasons(f), _dedupe(f.remedy))


def bridge_recorded_errors(facts: Facts) -> Verdict:
    """This bridge with errors recorded and raised later (fallback when it cannot throw)."""
    f = _bridge_prerequisites(facts)
    throw = _throw_available(facts)
    status = _status(f)
    reasons = _reasons(f)
    if status in ("ok", "degraded"):
        if throw is False:
            status = "degraded"
            active = (
                "active: the throw symbol is missing, so an error inside the engine is recorded "
                "and raised by the next bridged call or synchronize(), not at the failing wait"
            )
            reasons = [active, *(reasons if f.degraded else [])]
        else:
            fallback = "not active: available as a fallback; errors are raised inside the engine"
            reasons = [fallback, *reasons]
    return Verdict(BRIDGE_RECORDED, status, reasons, _dedupe(f.remedy))


def bridge_operators(facts: Facts) -> Verdict:
    """bridge_cffi.register_op: which of MXNet's two C routes its operators take here."""
    f = _bridge_prerequisites(facts)
    version = mxnet_version(facts)
    _, mx = _static(facts, "mxnet")
    if version is not None and not f.blockers:
        route = requirements.operator_route(version)
        if route == requirements.EXTENSION_LIBRARY_ROUTE:
            f.passed.append(
                f"extension-library route: MXNet {version} implements MX_LIBRARY_VERSION "
                f"{requirements.EXTENSION_LIBRARY_VERSION}, so registered operators are native "
                "MXNet operators run inside MXNet's own engine operations"
            )
        elif mx is not None and "MXCustomOpRegister" in mx.optional_symbols_missing:
            f.blockers.append("libmxnet.so exports no MXCustomOpRegister: no operator route")
        else:
            f.degraded.append(
                f"custom-operator route (MXCustomOpRegister): MXNet {version} has no "
                f"MX_LIBRARY_VERSION {requirements.EXTENSION_LIBRARY_VERSION} extension "
                "libraries, so each operator call crosses MXNet's custom-operator worker and a "
                "completion operation (slower than a native operator at small sizes)"
            )
    return Verdict(OPERATORS, _status(f), _reasons(f), _dedupe(f.remedy))


def _major(version: str | None) -> int | None:
    try:
        return int((version or "").split(".")[0])
    except ValueError:
        return None


def legacy_mxtvmbridge(facts: Facts) -> Verdict:
    """MXNet's C++ MXTVMBridge: only safe when both sides share compiler, string ABI and TVM ABI."""
    mx_lib, mx = _static(facts, "mxnet")
    tvm_lib, tvm = _static(facts, "tvm_runtime")
    if tvm is None:
        tvm_lib, tvm = _static(facts, "tvm")
    use_bridge = "use this bridge (bridge_cffi) instead of MXTVMBridge / tvm.contrib.mxnet"
    if mx is None:
        return Verdict(LEGACY, "unavailable", ["libmxnet.so not found or unreadable"], [])
    if not mx.exports_legacy_bridge:
        return Verdict(
            LEGACY, "unavailable", ["this libmxnet.so does not export MXTVMBridge"], [use_bridge]
        )
    if tvm is None or tvm_lib is None:
        return Verdict(LEGACY, "unavailable", ["TVM's runtime library not found"], [])
    unsafe: list[str] = []
    tv = tvm_version(facts)
    uses_ffi = "libtvm_ffi.so" in tvm.needed or (
        tv is not None and tv >= requirements.TVM_FFI_FIRST_VERSION
    )
    if uses_ffi:
        unsafe.append(
            f"TVM {tv or '(unknown version)'} uses the tvm-ffi ABI (TVMFFIAny, libtvm_ffi.so; "
            f"TVM >= {requirements.TVM_FFI_FIRST_VERSION}), not the PackedFunc ABI MXTVMBridge "
            f"was compiled against; {requirements.LEGACY_BRIDGE_MEASURED}"
        )
    if mx.string_abi != tvm.string_abi and "none" not in (mx.string_abi, tvm.string_abi):
        unsafe.append(
            f"C++ std::string ABI differs: {mx_lib.name if mx_lib else 'libmxnet.so'} uses the "
            f"{_abi_name(mx)} and {tvm_lib.name} the {_abi_name(tvm)}, so std::string and "
            "std::function cross the boundary with different layouts"
        )
    mc, tc = mx.compiler, tvm.compiler
    if mc.family is None or tc.family is None:
        unknown = [
            f"{name} ({_why_compiler_unknown(s)})"
            for name, s in (("libmxnet.so", mx), (tvm_lib.name, tvm))
            if s.compiler.family is None
        ]
        unsafe.append(
            "compiler unknown for " + "; ".join(unknown) + ": a shared C++ ABI of std:: "
            "types and exceptions cannot be confirmed"
        )
    elif mc.family != tc.family or _major(mc.version) != _major(tc.version):
        unsafe.append(
            f"compilers differ: libmxnet.so was built by {mc.family or '?'} {mc.version or '?'}, "
            f"{tvm_lib.name} by {tc.family or '?'} {tc.version or '?'} (C++ ABI of std:: types "
            "and exceptions is not guaranteed across them)"
        )
    trial = facts.dynamic.legacy_bridge_trial if facts.dynamic else None
    if trial and trial != "right answers":
        unsafe.insert(
            0,
            f"measured: the seed through MXTVMBridge with this TVM {trial} (a process of its own)",
        )
    if unsafe:
        remedy = [
            use_bridge,
            (
                "or build MXNet and a TVM < 0.20 from source with one compiler and one "
                "_GLIBCXX_USE_CXX11_ABI setting"
            ),
        ]
        return Verdict(LEGACY, "unsafe", unsafe, remedy)
    return Verdict(
        LEGACY,
        "ok",
        ["MXTVMBridge exported; same compiler family/major, same string ABI, PackedFunc-era TVM"]
        + ([f"measured: the seed through MXTVMBridge gives {trial}"] if trial else []),
        [],
    )


def _why_compiler_unknown(s: StaticFacts) -> str:
    if s.read_from != "sections":
        return "its section header table is unusable, so .comment cannot be read"
    return "no compiler named in .comment"


def _abi_name(s: StaticFacts) -> str:
    if s.string_abi == "cxx11":
        return f"C++11 ABI ({s.cxx11_symbols} __cxx11 symbols)"
    return f"old ABI (0 __cxx11 symbols among {s.cpp_symbols} C++ symbols)"


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def evaluate(facts: Facts) -> list[Verdict]:
    """All verdicts, in report order."""
    return [
        bridge_async(facts),
        bridge_recorded_errors(facts),
        legacy_mxtvmbridge(facts),
        bridge_operators(facts),
    ]


def exit_code(verdicts: list[Verdict]) -> int:
    """0 when the bridge runs async without degradation, 1 when it works degraded, else 2.

    The legacy verdict never changes the exit code: it describes a path this bridge replaces.
    """
    by_name = {v.name: v for v in verdicts}
    main = by_name.get(BRIDGE_ASYNC)
    if main is None:
        return EXIT_BROKEN
    if main.status == "ok":
        return EXIT_OK
    if main.status == "degraded":
        return EXIT_DEGRADED
    return EXIT_BROKEN
