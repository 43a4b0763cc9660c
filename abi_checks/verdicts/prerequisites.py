"""What every bridge verdict needs: MXNet and tvm-ffi present, recent, loadable, sane layout.

bridge-async, bridge-recorded-errors and bridge-operators start from these findings;
blocking_reasons() gives the ones that stop the bridge, for the bridge's own import check.
"""

from __future__ import annotations

from abi_checks import requirements
from abi_checks.facts import DynamicFacts, Facts
from abi_checks.verdicts.findings import Findings
from abi_checks.verdicts.lookups import static_of
from abi_checks.verdicts.prose import read_from_suffix
from abi_checks.verdicts.versions import mxnet_version


def bridge_prerequisites(facts: Facts, require_tvm_ffi: bool = True) -> Findings:
    """What both bridge modes need: MXNet and tvm-ffi present, recent, loadable, sane layout."""
    out = Findings()
    dyn = facts.dynamic
    mx_lib, mx = static_of(facts, "mxnet")
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
            out.passed.append(
                "libmxnet.so exports every required C symbol" + read_from_suffix(mx)
            )
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
    ffi_lib, ffi = static_of(facts, "tvm_ffi")
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
            out.passed.append(
                "libtvm_ffi.so exports every required C symbol" + read_from_suffix(ffi)
            )
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


def _packed_func_checks(facts: Facts, out: Findings) -> None:
    """A TVM of the PackedFunc generation: the C symbols its producer calls."""
    library = facts.tvm_library()
    # For mypy: only called when the static facts found a PackedFunc-generation TVM.
    assert library is not None and library.static is not None  # noqa: S101
    s = library.static
    if s.required_symbols_missing:
        out.blockers.append(
            f"{library.name} (PackedFunc generation) does not export "
            + ", ".join(s.required_symbols_missing)
        )
        return
    out.passed.append(
        f"{library.name} is a TVM of the PackedFunc generation (TVM < 0.20) and exports every C "
        "symbol the PackedFunc producer calls" + read_from_suffix(s)
    )
    if s.optional_symbols_missing:
        out.degraded.append(
            f"optional {library.name} symbols missing: "
            + requirements.what_is_degraded(s.optional_symbols_missing)
        )
    if not s.loadable:
        out.blockers += s.problems
        out.remedy += s.remedies


def _bridge_import_checks(dyn: DynamicFacts | None, out: Findings) -> None:
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


def _extension_checks(facts: Facts, out: Findings) -> None:
    # The verdicts judge the libraries; an extension not built yet is an install step, not a
    # property of this MXNet/TVM pair. One that is built but cannot load blocks the bridge.
    ext_lib, ext = static_of(facts, "bridge_extension")
    if ext_lib is None:
        return
    if ext is None:
        out.notes.append(f"bridge extension: {ext_lib.error or 'not found'} (not built yet?)")
    elif not ext.loadable:
        out.blockers += [f"bridge extension: {p}" for p in ext.problems]
        out.remedy += ext.remedies
    else:
        out.passed.append(f"bridge extension {ext_lib.path} loads")


def _layout_checks(dyn: DynamicFacts | None, out: Findings) -> None:
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
    findings = bridge_prerequisites(facts, require_tvm_ffi)
    return findings.blockers + findings.unsafe
