"""The probe's static layer, on the real wheels and on libraries built here with gcc."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from abi_native_builds import (
    PACKAGE_LIBMXNET,
    PACKAGE_LIBTVM_FFI,
    PACKAGE_LIBTVM_RUNTIME,
    build_shared,
    c_functions,
)

from abi_checks import cli, elf_static, requirements
from abi_checks.api import bridge_blockers
from abi_checks.static_probe import probe_file, tvm_ffi_pin_remedy

TVM_FFI_STRINGIFY = "_ZN3tvm3ffi4json9StringifyERKNS0_3AnyENS0_8OptionalIivEE"


def run_static(capsys: pytest.CaptureFixture[str], *paths: object) -> tuple[int, dict]:
    code = cli.main(["--json", "--static", *map(str, paths)])
    return code, json.loads(capsys.readouterr().out)


# ------------------------------------------------------------------ the real wheels (DESIGN §7)


def test_pip_mxnet_is_gcc_4_8_with_the_old_string_abi() -> None:
    facts = probe_file(str(PACKAGE_LIBMXNET), "mxnet")
    assert (facts.compiler.family, facts.compiler.version) == ("gcc", "4.8.5")
    assert facts.string_abi == "old" and facts.cxx11_symbols == 0 and facts.cpp_symbols > 0
    assert facts.needs_newest["GLIBCXX"] == "GLIBCXX_3.4.19"
    assert facts.required_symbols_missing == [] and facts.exports_legacy_bridge
    assert facts.loadable and facts.throw_symbol_in_tree


def test_pip_tvm_runtime_is_gcc_14_with_the_cxx11_string_abi() -> None:
    preloaded = {"libtvm_ffi.so": str(PACKAGE_LIBTVM_FFI)}
    facts = probe_file(str(PACKAGE_LIBTVM_RUNTIME), "tvm_runtime", preloaded)
    assert (facts.compiler.family, facts.compiler.version) == ("gcc", "14.2.1")
    assert facts.string_abi == "cxx11" and facts.cxx11_symbols == 95
    assert facts.needs_newest["GLIBCXX"] == "GLIBCXX_3.4.22"
    assert facts.loadable


def test_pip_tvm_ffi_exports_the_required_symbols_with_the_cxx11_abi() -> None:
    facts = probe_file(str(PACKAGE_LIBTVM_FFI), "tvm_ffi")
    assert facts.string_abi == "cxx11"
    assert facts.needs_newest["GLIBCXX"] == "GLIBCXX_3.4.21"
    assert facts.required_symbols_missing == [] and facts.optional_symbols_missing == []


def test_tvm_runtime_without_its_preloaded_tvm_ffi_names_the_missing_library() -> None:
    # libtvm_runtime.so's RUNPATH ($ORIGIN = tvm/lib) cannot find tvm_ffi/lib/libtvm_ffi.so:
    # it loads only because `import tvm` loads libtvm_ffi.so (RTLD_GLOBAL) first.
    facts = probe_file(str(PACKAGE_LIBTVM_RUNTIME), "tvm_runtime")
    assert not facts.loadable
    assert facts.missing_libraries == ["libtvm_ffi.so"]


def test_static_probe_reads_libmxnet_fast_enough_for_import_time() -> None:
    elf_static._CACHE.clear()
    start = time.perf_counter()
    assert bridge_blockers(str(PACKAGE_LIBMXNET), 10901, str(PACKAGE_LIBTVM_FFI)) == []
    assert time.perf_counter() - start < 0.5


def test_bridge_blockers_rejects_mxnet_1_5_0_with_the_documented_reason() -> None:
    reasons = bridge_blockers(str(PACKAGE_LIBMXNET), 10500)
    assert reasons == [requirements.MXNET_TOO_OLD_REASON.format(found="1.5.0")]


# ------------------------------------------------------------------ never executes the file


def test_static_probe_never_runs_the_library_constructor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "constructor-ran"
    lib = build_shared(
        tmp_path,
        "libmarker.so",
        "#include <stdio.h>\n"
        "__attribute__((constructor)) static void touch(void) {\n"
        f'  FILE *f = fopen("{marker}", "w"); if (f) fclose(f);\n'
        "}\n"
        "int marker_fn(void) { return 1; }\n",
    )
    code, report = run_static(capsys, lib)
    assert code == 0
    assert report["libraries"][str(lib)]["static"]["loadable"] is True
    assert not marker.exists()
    # The marker is a real witness: loading the library does create it.
    subprocess.run([sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(lib)!r})"], check=True)
    assert marker.exists()


@pytest.mark.parametrize("kind", ["text file", "missing path", "directory", "truncated ELF"])
def test_bad_static_path_is_a_one_line_error_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = tmp_path / "thing.so"
    if kind == "text file":
        path.write_text("not an ELF file\n")
    elif kind == "directory":
        path.mkdir()
    elif kind == "truncated ELF":
        path.write_bytes(PACKAGE_LIBTVM_FFI.read_bytes()[:64])
    code = cli.main(["--static", str(path)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and str(path) in captured.err
    assert "Traceback" not in captured.err


# ------------------------------------------------------------------ symbols and loadability


def test_partial_mxnet_library_names_each_missing_required_symbol(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    present = ["MXGetVersion", "MXGetLastError", "MXEnginePushAsyncND"]
    lib = build_shared(tmp_path, "libmxnet.so", c_functions(present))
    code, report = run_static(capsys, lib)
    static = report["libraries"][str(lib)]["static"]
    assert code == 2
    assert static["required_symbols_missing"] == ["MXEnginePushSyncND", "MXNDArrayToDLPack"]
    assert "MXEnginePushAsyncND" not in static["optional_symbols_missing"]
    assert cli.main(["--static", str(lib)]) == 2
    text = capsys.readouterr().out
    assert "MXEnginePushSyncND, MXNDArrayToDLPack" in text


def test_bridge_blockers_names_the_symbols_a_partial_mxnet_lacks(tmp_path: Path) -> None:
    lib = build_shared(tmp_path, "libmxnet.so", c_functions(["MXGetVersion", "MXGetLastError"]))
    (reason,) = bridge_blockers(str(lib), 10901)
    assert "MXEnginePushSyncND" in reason and "MXNDArrayToDLPack" in reason


def _user_of_dep(tmp_path: Path, dep_functions: list[str]) -> Path:
    build_shared(tmp_path, "libdep.so", c_functions(dep_functions))
    return build_shared(
        tmp_path,
        "libuser.so",
        "extern int dep_value(void); extern int dep_other(void);\n"
        "extern int dep_optional(void) __attribute__((weak));\n"
        "int user_fn(void) { return dep_value() + dep_other() + (dep_optional ? 1 : 0); }\n",
        link=[f"-L{tmp_path}", "-ldep", "-Wl,-rpath,$ORIGIN"],
    )


def test_library_whose_dependency_lost_a_symbol_is_reported_unloadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = _user_of_dep(tmp_path, ["dep_value", "dep_other"])
    code, report = run_static(capsys, user)
    assert code == 0 and report["libraries"][str(user)]["static"]["loadable"]
    # Same soname, rebuilt without dep_other: the loader would now refuse libuser.so.
    build_shared(tmp_path, "libdep.so", c_functions(["dep_value"]))
    code, report = run_static(capsys, user)
    static = report["libraries"][str(user)]["static"]
    assert code == 2 and not static["loadable"]
    assert [m["name"] for m in static["missing_symbols"]] == [
        "dep_other"
    ]  # weak dep_optional is fine
    assert any("dep_other" in p and "will not load" in p for p in static["problems"])


def test_missing_symbol_version_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_shared(
        tmp_path,
        "libdep.so",
        c_functions(["dep_value"]),
        version_script="DEP_2 { global: dep_value; local: *; };",
    )
    user = build_shared(
        tmp_path,
        "libuser.so",
        "extern int dep_value(void);\nint user_fn(void) { return dep_value(); }\n",
        link=[f"-L{tmp_path}", "-ldep", "-Wl,-rpath,$ORIGIN"],
    )
    assert run_static(capsys, user)[0] == 0
    build_shared(
        tmp_path,
        "libdep.so",
        c_functions(["dep_value"]),
        version_script="DEP_1 { global: dep_value; local: *; };",
    )
    code, report = run_static(capsys, user)
    static = report["libraries"][str(user)]["static"]
    assert code == 2
    assert [(v["version"], v["soname"]) for v in static["missing_versions"]] == [
        ("DEP_2", "libdep.so")
    ]


def test_missing_tvm_ffi_symbol_remedy_pins_apache_tvm_ffi(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The apache-tvm 0.25.0 case in miniature: a TVM-like library needs a tvm::ffi C++ symbol
    # that a newer libtvm_ffi.so stopped exporting.
    declare = f'extern int stringify(void) __asm__("{TVM_FFI_STRINGIFY}");\n'
    ffi_dir = tmp_path / "ffi"
    build_shared(
        ffi_dir,
        "libtvm_ffi.so",
        f'int stringify(void) __asm__("{TVM_FFI_STRINGIFY}");\n'
        "int stringify(void) { return 0; }\n",
    )
    runtime = build_shared(
        tmp_path,
        "libtvm_runtime.so",
        declare + "int rt(void) { return stringify(); }\n",
        link=[f"-L{ffi_dir}", "-ltvm_ffi", f"-Wl,-rpath,{ffi_dir}"],
    )
    assert run_static(capsys, runtime)[0] == 0
    build_shared(ffi_dir, "libtvm_ffi.so", c_functions(["TVMFFIFunctionCall"]))
    code, report = run_static(capsys, runtime)
    static = report["libraries"][str(runtime)]["static"]
    assert code == 2
    assert [m["name"] for m in static["missing_symbols"]] == [TVM_FFI_STRINGIFY]
    assert any("pin apache-tvm-ffi" in r for r in static["remedies"])


def test_tvm_ffi_remedy_knows_the_apache_tvm_0_25_pin() -> None:
    assert "pip install 'apache-tvm-ffi==0.1.12'" in tvm_ffi_pin_remedy("0.25.0")
    assert "pin apache-tvm-ffi to a version matching the TVM build" in tvm_ffi_pin_remedy("0.99.0")


def test_static_probe_of_package_libraries_outside_roles_works(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, report = run_static(capsys, PACKAGE_LIBMXNET, PACKAGE_LIBTVM_FFI)
    assert code == 0
    roles = [lib["role"] for lib in report["libraries"].values()]
    assert roles == ["mxnet", "tvm_ffi"]


def test_static_tvm_runtime_in_site_packages_uses_the_sibling_tvm_ffi(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, report = run_static(capsys, PACKAGE_LIBTVM_RUNTIME)
    lib = report["libraries"][str(PACKAGE_LIBTVM_RUNTIME)]
    assert code == 0 and lib["static"]["loadable"]
    assert lib["package_version"].startswith("0.27")
    (ffi,) = [d for d in lib["static"]["dependencies"] if d["soname"] == "libtvm_ffi.so"]
    assert (ffi["path"], ffi["how"]) == (str(PACKAGE_LIBTVM_FFI), "preloaded")


def test_static_preload_option_satisfies_a_dependency_found_nowhere_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dep = build_shared(tmp_path / "elsewhere", "libdep.so", c_functions(["dep_value"]))
    user = build_shared(
        tmp_path,
        "libuser.so",
        "extern int dep_value(void);\nint user_fn(void) { return dep_value(); }\n",
        link=[f"-L{dep.parent}", "-ldep"],  # no RPATH: only a preloaded libdep.so satisfies it
    )
    code, report = run_static(capsys, user)
    assert code == 2
    assert report["libraries"][str(user)]["static"]["missing_libraries"] == ["libdep.so"]
    assert cli.main(["--static", str(user), "--preload", str(dep)]) == 0
