"""The legacy-mxtvmbridge verdict: MXNet's C++ MXTVMBridge, safe only with one C++ ABI."""

from __future__ import annotations

from abi_checks import requirements
from abi_checks.facts import Facts, Verdict
from abi_checks.verdicts.lookups import static_of
from abi_checks.verdicts.names import LEGACY
from abi_checks.verdicts.prose import abi_name, why_compiler_unknown
from abi_checks.verdicts.versions import tvm_version


def _major(version: str | None) -> int | None:
    """The major number of a compiler version ("4.8.5" -> 4); None when there is none."""
    try:
        return int((version or "").split(".")[0])
    except ValueError:
        return None


def legacy_mxtvmbridge(facts: Facts) -> Verdict:
    """MXNet's C++ MXTVMBridge: only safe when both sides share compiler, string ABI and TVM ABI."""
    mx_lib, mx = static_of(facts, "mxnet")
    tvm_lib, tvm = static_of(facts, "tvm_runtime")
    if tvm is None:
        tvm_lib, tvm = static_of(facts, "tvm")
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
            f"{abi_name(mx)} and {tvm_lib.name} the {abi_name(tvm)}, so std::string and "
            "std::function cross the boundary with different layouts"
        )
    mc, tc = mx.compiler, tvm.compiler
    if mc.family is None or tc.family is None:
        unknown = [
            f"{name} ({why_compiler_unknown(s)})"
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
