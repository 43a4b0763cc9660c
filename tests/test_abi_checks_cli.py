"""The abi_checks command: finding copies, the child process, the reports and their keys."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import bridge_cffi
from abi_checks import cli, finder
from abi_native_builds import PACKAGE_LIBMXNET, build_shared, c_functions

REPO = Path(__file__).resolve().parent.parent

# Frozen JSON keys (SCHEMA.md). Adding a key is fine (add it here too); renaming or removing
# one is a schema change and needs a new schema_version.
TOP_KEYS = {"schema_version", "mode", "exit_code", "system", "libraries", "dynamic", "verdicts"}
SYSTEM_KEYS = {"libc_path", "glibc", "libstdcxx_path", "glibcxx", "cxxabi"}
LIBRARY_KEYS = {"role", "name", "path", "package_version", "copies", "static", "error"}
COPY_KEYS = {"path", "realpath", "sources", "same_file_as", "predicted", "mapped"}
STATIC_KEYS = {
    "tvm_generation",
    "soname",
    "compiler",
    "string_abi",
    "cxx11_symbols",
    "cpp_symbols",
    "needed",
    "rpath",
    "runpath",
    "needs_newest",
    "system_provides_newest",
    "required_symbols_missing",
    "optional_symbols_missing",
    "exports_legacy_bridge",
    "throw_symbol_in_tree",
    "loadable",
    "dependencies",
    "missing_libraries",
    "missing_symbols",
    "missing_versions",
    "problems",
    "remedies",
    "read_from",
    "read_notes",
}
COMPILER_KEYS = {"family", "version", "strings"}
DEPENDENCY_KEYS = {"soname", "needed_by", "path", "how"}
SELFTEST_KEYS = {"ok", "detail"}
DYNAMIC_KEYS = {
    "legacy_bridge_trial",
    "ran",
    "error",
    "stages_completed",
    "mxnet_version",
    "mxnet_version_code",
    "mxnet_lib_path",
    "mxnet_error",
    "mxnet_features",
    "tvm_version",
    "tvm_error",
    "tvm_ffi_version",
    "tvm_ffi_error",
    "dlpack_layout",
    "view_identity",
    "throw_symbol",
    "bridge_available",
    "bridge_detail",
    "bridge_import_error",
    "bridge_run_context_layout",
    "bridge_view_identity",
    "bridge_error_mode",
    "gpu",
    "mapped_libraries",
}
GPU_KEYS = {"status", "detail"}
VERDICT_KEYS = {"name", "status", "reasons", "remedy"}

#: The probe's exit status and its JSON report.
Report = tuple[int, dict[str, Any]]


@pytest.fixture(scope="module")
def module_report() -> Report:
    """`python -m abi_checks --json` run as a user would, from another directory."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(  # noqa: PLW1510 - the exit code is what the tests check
        [sys.executable, "-m", "abi_checks", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        timeout=180,
    )
    return proc.returncode, json.loads(proc.stdout)


def test_python_m_abi_checks_exits_0_for_the_real_wheels(module_report: Report) -> None:
    code, report = module_report
    assert code == 0 and report["exit_code"] == 0
    statuses = {v["name"]: v["status"] for v in report["verdicts"]}
    assert statuses == {
        "bridge-async": "ok",
        "bridge-recorded-errors": "ok",
        "legacy-mxtvmbridge": "unsafe",
        "bridge-operators": "ok",
    }


def test_json_keys_are_the_frozen_schema(module_report: Report) -> None:
    _, report = module_report
    assert set(report) == TOP_KEYS and report["schema_version"] == 1 and report["mode"] == "full"
    assert set(report["system"]) == SYSTEM_KEYS
    assert set(report["dynamic"]) == DYNAMIC_KEYS
    for name in (
        "dlpack_layout",
        "view_identity",
        "throw_symbol",
        "bridge_run_context_layout",
        "bridge_view_identity",
    ):
        assert set(report["dynamic"][name]) == SELFTEST_KEYS
    assert set(report["dynamic"]["gpu"]) == GPU_KEYS
    assert {"mxnet", "tvm_ffi", "tvm_runtime", "bridge_extension"} <= set(report["libraries"])
    for lib in report["libraries"].values():
        assert set(lib) == LIBRARY_KEYS
        assert all(set(c) == COPY_KEYS for c in lib["copies"])
        if lib["static"] is not None:
            assert set(lib["static"]) == STATIC_KEYS
            assert set(lib["static"]["compiler"]) == COMPILER_KEYS
            assert all(set(d) == DEPENDENCY_KEYS for d in lib["static"]["dependencies"])
    assert all(set(v) == VERDICT_KEYS for v in report["verdicts"])


def test_gpu_field_says_no_gpu_with_the_reason_on_a_cpu_build(
    module_report: Report,
) -> None:
    _, report = module_report
    gpu = report["dynamic"]["gpu"]
    if report["dynamic"]["mxnet_features"].get("CUDA"):
        assert gpu["status"] == "confirmed", gpu  # tests/gpu checks the GPU machine's report
    else:
        assert gpu == {"status": "no GPU", "detail": "this MXNet is built without CUDA"}


def test_text_report_has_a_table_per_library_and_the_verdicts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["--no-dynamic"])
    out = capsys.readouterr().out
    assert code == 1  # without the child the view-identity self-test cannot confirm aliasing
    for heading in (
        "== libmxnet.so (mxnet) ==",
        "== libtvm_ffi.so (tvm_ffi) ==",
        "== libtvm_runtime.so (tvm_runtime) ==",
        "== verdicts ==",
    ):
        assert heading in out
    assert "GLIBCXX_3.4.19" in out and "gcc 4.8.5" in out
    assert "legacy-mxtvmbridge      UNSAFE" in out


def test_mxnet_library_path_copy_is_listed_beside_the_package_copy_and_mapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "libmxnet.so"
    shutil.copyfile(PACKAGE_LIBMXNET, copy)
    for dep in ("libopenblas.so.0", "libgfortran.so.3"):  # found through the copy's $ORIGIN
        (tmp_path / dep).symlink_to(PACKAGE_LIBMXNET.parent / dep)
    monkeypatch.setenv("MXNET_LIBRARY_PATH", str(copy))
    code = cli.main(["--json"])
    report = json.loads(capsys.readouterr().out)
    copies = {c["path"]: c for c in report["libraries"]["mxnet"]["copies"]}
    assert code == 0
    assert copies[str(copy)]["sources"] == ["MXNET_LIBRARY_PATH"]
    assert copies[str(copy)]["predicted"] and copies[str(copy)]["mapped"]
    package = copies[str(PACKAGE_LIBMXNET)]
    assert package["sources"] == ["package"] and not package["mapped"]
    assert report["libraries"]["mxnet"]["path"] == str(copy)
    assert report["dynamic"]["mxnet_lib_path"] == str(copy)


def test_unusable_mxnet_library_is_a_child_finding_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = build_shared(tmp_path, "libmxnet.so", c_functions(["MXGetVersion", "MXGetLastError"]))
    monkeypatch.setenv("MXNET_LIBRARY_PATH", str(fake))
    code = cli.main(["--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 2
    assert report["dynamic"]["mxnet_error"]  # import mxnet failed in the child, not here
    verdict = report["verdicts"][0]
    assert verdict["status"] == "unavailable"
    assert any("MXEnginePushSyncND" in r for r in verdict["reasons"])


def test_child_timeout_is_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--json", "--timeout", "0.05"])
    report = json.loads(capsys.readouterr().out)
    assert "timed out" in report["dynamic"]["error"]
    assert code == 1


def test_child_crash_is_reported_with_the_signal_and_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A libmxnet.so whose constructor aborts: the child dies while importing mxnet.
    fake = build_shared(
        tmp_path,
        "libmxnet.so",
        "#include <stdlib.h>\n__attribute__((constructor)) static void boom(void) { abort(); }\n"
        + c_functions(["MXGetVersion"]),
    )
    monkeypatch.setenv("MXNET_LIBRARY_PATH", str(fake))
    code = cli.main(["--json"])
    report = json.loads(capsys.readouterr().out)
    assert "killed by SIGABRT during stage 'mxnet'" in report["dynamic"]["error"]
    assert code == 2  # and the fake's missing symbols still make the bridge unavailable


def test_symlinked_mxnet_library_path_is_listed_as_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = tmp_path / "libmxnet.so"
    link.symlink_to(PACKAGE_LIBMXNET)
    monkeypatch.setenv("MXNET_LIBRARY_PATH", str(link))
    copies = {c.path: c for c in finder.find_copies(finder.TARGETS[0])}
    assert copies[str(link)].realpath == str(PACKAGE_LIBMXNET) and copies[str(link)].predicted
    assert copies[str(PACKAGE_LIBMXNET)].same_file_as == str(link)


def test_each_tvm_library_names_its_generation(module_report: Report) -> None:
    _, report = module_report
    # apache-tvm 0.27's libtvm_runtime.so links libtvm_ffi.so and exports no TVMFuncCall.
    assert report["libraries"]["tvm_runtime"]["static"]["tvm_generation"] == "tvm-ffi"
    assert report["libraries"]["mxnet"]["static"]["tvm_generation"] is None
    # MXTVMBridge is only tried with a TVM of the PackedFunc generation.
    assert report["dynamic"]["legacy_bridge_trial"] is None


def test_a_variable_pointing_at_a_wrong_file_is_named_with_its_remedy(tmp_path: Path) -> None:
    library = build_shared(tmp_path, "libnot_mxnet.so", "int not_mxnet(void) { return 0; }\n")
    env = dict(os.environ, MXNET_LIBRARY_PATH=str(library))
    done = subprocess.run([sys.executable, "-m", "abi_checks", "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    report = json.loads(done.stdout)
    mxnet = report["libraries"]["mxnet"]
    assert mxnet["path"] == str(library)
    # The installed mxnet's version describes its own libmxnet.so, not this file.
    assert mxnet["package_version"] is None
    static = mxnet["static"]
    assert static["problems"][0] == (
        f"MXNET_LIBRARY_PATH points at {library}, which is not a usable libmxnet.so"
    )
    assert static["remedies"][0].startswith("unset MXNET_LIBRARY_PATH")
    bridge = next(v for v in report["verdicts"] if v["name"] == "bridge-async")
    assert bridge["status"] == "unavailable"
    assert any(r.startswith("unset MXNET_LIBRARY_PATH") for r in bridge["remedy"])
    assert done.returncode == 2


def test_usage_errors_have_their_own_exit_code_and_version_answers() -> None:
    bad = subprocess.run([sys.executable, "-m", "abi_checks", "--no-such-flag"], cwd=REPO,
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == cli.EXIT_USAGE == 64
    assert "unrecognized arguments: --no-such-flag" in bad.stderr
    version = subprocess.run([sys.executable, "-m", "abi_checks", "--version"], cwd=REPO,
                             capture_output=True, text=True, timeout=60, check=False)
    assert version.returncode == 0
    assert version.stdout.strip() == f"abi-checks {bridge_cffi.__version__}"
    helped = subprocess.run([sys.executable, "-m", "abi_checks", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=60, check=False)
    assert "64 usage error" in " ".join(helped.stdout.split())
