"""Verdicts for the installed wheels (mxnet 1.9.1 + TVM 0.27), and each rule from altered facts."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import Version

from abi_checks import dynamic, requirements, verdicts
from abi_checks.collect import collect
from abi_checks.dynamic_child import bridge_extension_files
from abi_checks.facts import Compiler, Facts, GpuCheck, SelfTest


@pytest.fixture(scope="module")
def real_facts() -> Facts:
    """Facts about this Python's real wheels, child process included (collected once)."""
    return collect()


def by_name(facts: Facts) -> dict[str, verdicts.Verdict]:
    return {v.name: v for v in verdicts.evaluate(facts)}


def altered(facts: Facts) -> Facts:
    return copy.deepcopy(facts)


# ------------------------------------------------------------------ the real wheels


def test_real_wheels_were_probed_in_a_child(real_facts: Facts) -> None:
    dyn = real_facts.dynamic
    assert dyn is not None and dyn.error is None
    assert (dyn.mxnet_version, dyn.mxnet_version_code) == ("1.9.1", 10901)
    assert dyn.tvm_version is not None and Version(dyn.tvm_version) >= Version("0.27")
    assert dyn.dlpack_layout.ok and dyn.view_identity.ok and dyn.throw_symbol.ok
    assert "CUDA" in dyn.mxnet_features


def test_real_wheels_run_the_bridge_async_without_degradation(real_facts: Facts) -> None:
    verdict = by_name(real_facts)[verdicts.BRIDGE_ASYNC]
    assert verdict.status == "ok", verdict.reasons
    assert verdicts.exit_code(verdicts.evaluate(real_facts)) == 0


def test_built_bridge_imports_and_self_tests_in_the_child(real_facts: Facts) -> None:
    dyn = real_facts.dynamic
    assert dyn is not None
    assert dyn.bridge_available and dyn.bridge_import_error is None
    assert dyn.bridge_run_context_layout.ok and dyn.bridge_view_identity.ok
    reasons = by_name(real_facts)[verdicts.BRIDGE_ASYNC].reasons
    assert not any(r.startswith("note:") for r in reasons)


def test_real_wheels_keep_recorded_errors_as_an_inactive_fallback(real_facts: Facts) -> None:
    verdict = by_name(real_facts)[verdicts.BRIDGE_RECORDED]
    assert verdict.status == "ok"
    assert verdict.reasons[0].startswith("not active")


def test_real_wheels_make_the_legacy_bridge_unsafe_and_say_why(real_facts: Facts) -> None:
    verdict = by_name(real_facts)[verdicts.LEGACY]
    assert verdict.status == "unsafe"
    text = " ".join(verdict.reasons)
    assert "compilers differ" in text and "gcc 4.8.5" in text and "gcc 14" in text
    assert "std::string ABI differs" in text and "old ABI" in text and "C++11 ABI" in text
    assert "tvm-ffi ABI" in text and "returns 0 and never calls the function" in text
    assert any("use this bridge" in r for r in verdict.remedy)


# ------------------------------------------------------------------ rules, from altered facts


def test_mxnet_1_5_0_is_unsupported_with_the_reason_from_requirements(real_facts: Facts) -> None:
    facts = altered(real_facts)
    assert facts.dynamic is not None
    facts.dynamic.mxnet_version_code = 10500
    found = by_name(facts)
    reason = requirements.MXNET_TOO_OLD_REASON.format(found="1.5.0")
    for name in (verdicts.BRIDGE_ASYNC, verdicts.BRIDGE_RECORDED):
        assert found[name].status == "unavailable"
        assert reason in found[name].reasons
    assert verdicts.exit_code(list(found.values())) == 2


def test_missing_throw_symbol_switches_to_recorded_errors(real_facts: Facts) -> None:
    facts = altered(real_facts)
    assert facts.dynamic is not None
    facts.dynamic.throw_symbol = SelfTest(False, "not resolvable")
    found = by_name(facts)
    assert found[verdicts.BRIDGE_ASYNC].status == "degraded"
    assert any(requirements.ENGINE_THROW_SYMBOL in r for r in found[verdicts.BRIDGE_ASYNC].reasons)
    assert found[verdicts.BRIDGE_RECORDED].status == "degraded"
    assert found[verdicts.BRIDGE_RECORDED].reasons[0].startswith("active")
    assert verdicts.exit_code(list(found.values())) == 1


def test_failed_view_identity_self_test_makes_the_bridge_unsafe(real_facts: Facts) -> None:
    facts = altered(real_facts)
    assert facts.dynamic is not None
    facts.dynamic.view_identity = SelfTest(False, "view identity self-test failed: x[0:2] differs")
    assert by_name(facts)[verdicts.BRIDGE_ASYNC].status == "unsafe"


def test_missing_required_mxnet_symbol_makes_the_bridge_unavailable(real_facts: Facts) -> None:
    facts = altered(real_facts)
    assert facts.libraries["mxnet"].static is not None
    facts.libraries["mxnet"].static.required_symbols_missing = ["MXEnginePushSyncND"]
    verdict = by_name(facts)[verdicts.BRIDGE_ASYNC]
    assert verdict.status == "unavailable"
    assert any("MXEnginePushSyncND" in r for r in verdict.reasons)


def test_child_crash_is_a_degradation_not_a_crash(real_facts: Facts) -> None:
    facts = altered(real_facts)
    assert facts.dynamic is not None
    facts.dynamic.error = "probe child killed by SIGSEGV during stage 'tvm'"
    verdict = by_name(facts)[verdicts.BRIDGE_ASYNC]
    assert verdict.status == "degraded" and "SIGSEGV" in " ".join(verdict.reasons)


def test_legacy_bridge_is_unavailable_when_mxnet_does_not_export_it(real_facts: Facts) -> None:
    facts = altered(real_facts)
    assert facts.libraries["mxnet"].static is not None
    facts.libraries["mxnet"].static.exports_legacy_bridge = False
    assert by_name(facts)[verdicts.LEGACY].status == "unavailable"


def test_legacy_bridge_is_ok_for_a_matching_packedfunc_era_pair(real_facts: Facts) -> None:
    facts = altered(real_facts)
    rt = facts.libraries["tvm_runtime"]
    assert rt.static is not None
    assert facts.libraries["mxnet"].static is not None
    rt.static.string_abi = "old"
    rt.static.compiler = copy.deepcopy(facts.libraries["mxnet"].static.compiler)
    rt.static.needed = [n for n in rt.static.needed if n != "libtvm_ffi.so"]
    assert facts.dynamic is not None
    rt.package_version = facts.dynamic.tvm_version = "0.8.0"
    assert by_name(facts)[verdicts.LEGACY].status == "ok"


@given(st.integers(0, 3), st.integers(0, 99), st.integers(0, 99))
def test_only_mxnet_from_1_5_1_on_is_supported(major: int, minor: int, patch: int) -> None:
    version = requirements.decode_mxnet_version(major * 10000 + minor * 100 + patch)
    assert version == Version(f"{major}.{minor}.{patch}")
    supported = requirements.mxnet_version_problem(version) is None
    assert supported == (version >= Version("1.5.1"))


# ------------------------------------------------------------------ the bridge itself in the child


def _bridge_copy(site: Path, keep_extension: bool, damage: str | None = None) -> Path:
    """A copy of this checkout's bridge_cffi (with its real built extension, unless told not
    to) in `site`, damaged as a broken install would be.
    """
    package, extensions = bridge_extension_files()
    assert package is not None and extensions, "the bridge extension must be built for this test"
    target = site / "bridge_cffi"
    ignore = ["__pycache__"] + ([] if keep_extension else ["_native*.so"])
    shutil.copytree(package, target, ignore=shutil.ignore_patterns(*ignore))
    if damage == "module truncated":  # an interrupted copy: a SyntaxError, not an ImportError
        source = (target / "errors.py").read_text()
        (target / "errors.py").write_text(source[: len(source) // 2] + "\ndef broken(:\n")
    elif damage == "extension truncated":
        for path in target.glob("_native*.so"):
            path.write_bytes(path.read_bytes()[:64])
    return site


def _with_child_seeing(site: Path, real_facts: Facts, monkeypatch: pytest.MonkeyPatch) -> Facts:
    # The child puts its working directory, then the user's PYTHONPATH first on sys.path (as
    # `python -c 'import bridge_cffi'` would), so it imports the copy in `site`.
    monkeypatch.chdir(site)
    monkeypatch.setenv("PYTHONPATH", str(site))
    facts = altered(real_facts)
    facts.dynamic = dynamic.run_child()
    return facts


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        ("module truncated", "SyntaxError"),
        ("extension truncated", "ImportError"),
    ],
)
def test_installed_bridge_that_fails_to_import_is_unavailable(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    real_facts: Facts,
    damage: str,
    error: str,
) -> None:
    site = _bridge_copy(tmp_path, keep_extension=True, damage=damage)
    facts = _with_child_seeing(site, real_facts, monkeypatch)
    assert facts.dynamic is not None
    assert facts.dynamic.error is None and not facts.dynamic.bridge_available
    assert error in (facts.dynamic.bridge_import_error or "")
    found = by_name(facts)
    for name in (verdicts.BRIDGE_ASYNC, verdicts.BRIDGE_RECORDED):
        assert found[name].status == "unavailable"
        (reason,) = [r for r in found[name].reasons if "import bridge_cffi failed" in r]
        assert error in reason
        assert any("import bridge_cffi" in r for r in found[name].remedy)
    assert verdicts.exit_code(list(found.values())) == 2


def test_bridge_without_its_extension_is_a_note_not_a_passed_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_facts: Facts
) -> None:
    site = _bridge_copy(tmp_path, keep_extension=False)
    facts = _with_child_seeing(site, real_facts, monkeypatch)
    assert facts.dynamic is not None
    assert not facts.dynamic.bridge_available and facts.dynamic.bridge_import_error is None
    verdict = by_name(facts)[verdicts.BRIDGE_ASYNC]
    assert verdict.status == "ok", verdict.reasons
    (note,) = [r for r in verdict.reasons if "not built" in r or "not run" in r]
    assert note.startswith("note: bridge self-tests not run") and str(site) in note


def test_bridge_import_failure_is_never_listed_as_passed(real_facts: Facts) -> None:
    facts = altered(real_facts)
    assert facts.dynamic is not None
    facts.dynamic.bridge_available = False
    facts.dynamic.bridge_import_error = "ModuleNotFoundError: No module named 'mxnet.numpy'"
    facts.dynamic.bridge_detail = "import bridge_cffi failed: " + facts.dynamic.bridge_import_error
    verdict = by_name(facts)[verdicts.BRIDGE_ASYNC]
    assert verdict.status == "unavailable"
    assert verdict.reasons == [
        ("import bridge_cffi failed in a child process: "
        "ModuleNotFoundError: No module named 'mxnet.numpy'")
    ]


# ------------------------------------------------------------------ read from program headers


def _as_read_from_program_headers(facts: Facts) -> Facts:
    facts = altered(facts)
    mx = facts.libraries["mxnet"].static
    assert mx is not None
    mx.read_from = "program-headers"
    mx.read_notes = ["section header table unusable (...)", "compiler unknown: ..."]
    mx.compiler = Compiler(None, None)
    return facts


def test_mxnet_read_from_program_headers_still_runs_the_bridge_and_says_so(
    real_facts: Facts,
) -> None:
    verdict = by_name(_as_read_from_program_headers(real_facts))[verdicts.BRIDGE_ASYNC]
    assert verdict.status == "ok"
    assert (
        "libmxnet.so exports every required C symbol (read from the program headers: its "
        "section header table is unusable)"
    ) in verdict.reasons


def test_unknown_compiler_is_named_as_unknown_not_as_different(real_facts: Facts) -> None:
    verdict = by_name(_as_read_from_program_headers(real_facts))[verdicts.LEGACY]
    text = " ".join(verdict.reasons)
    assert verdict.status == "unsafe"
    assert "compilers differ" not in text
    assert "compiler unknown for libmxnet.so (its section header table is unusable" in text


def test_no_tvm_at_all_leaves_c_kernels_working(real_facts: Facts) -> None:
    # MXNet alone (no apache-tvm-ffi, no TVM): the bridge still runs C protocol kernels.
    facts = altered(real_facts)
    for role in ("tvm_ffi", "tvm_runtime", "tvm_compiler", "tvm"):
        facts.libraries.pop(role, None)
    assert facts.dynamic is not None
    facts.dynamic.tvm_ffi_version, facts.dynamic.tvm_version = None, None
    facts.dynamic.tvm_ffi_error = "ModuleNotFoundError: No module named 'tvm_ffi'"
    facts.dynamic.tvm_error = "ModuleNotFoundError: No module named 'tvm'"
    verdict = by_name(facts)[verdicts.BRIDGE_ASYNC]
    assert verdict.status == "degraded", verdict.reasons
    assert any("only C protocol kernels" in reason for reason in verdict.reasons)
    assert "for TVM functions: pip install 'bridge_cffi[stack]'" in verdict.remedy


def test_a_tvm_without_its_tvm_ffi_is_still_unavailable(real_facts: Facts) -> None:
    facts = altered(real_facts)
    facts.libraries.pop("tvm_ffi")
    verdict = by_name(facts)[verdicts.BRIDGE_ASYNC]
    assert verdict.status == "unavailable"
    assert "libtvm_ffi.so not found (is apache-tvm-ffi installed?)" in verdict.reasons


def test_a_gpu_the_self_test_did_not_confirm_degrades_the_bridge_and_says_why(
    real_facts: Facts,
) -> None:
    facts = altered(real_facts)
    assert facts.dynamic is not None
    facts.dynamic.gpu = GpuCheck("not confirmed", "cuStreamQuery(0x10) returned CUresult 400")
    verdict = by_name(facts)["bridge-async"]
    assert verdict.status == "degraded"
    assert any("GPU arrays are refused" in r and "CUresult 400" in r for r in verdict.reasons)
    facts.dynamic.gpu = GpuCheck("confirmed", "gpu(0): stream 0x7f00 answered")
    verdict = by_name(facts)["bridge-async"]
    assert verdict.status == "ok"
    assert "GPU stream self-test confirmed: gpu(0): stream 0x7f00 answered" in verdict.reasons
