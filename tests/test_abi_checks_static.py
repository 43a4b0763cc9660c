"""The probe's static layer, on the real wheels and on libraries built here with gcc."""

from __future__ import annotations

import json
import logging
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile

from abi_checks import cli, elf_static, requirements
from abi_checks.api import BridgeCheck, bridge_blockers, check_bridge
from abi_checks.static_probe import probe_file, tvm_ffi_pin_remedy
from abi_native_builds import (
    PACKAGE_LIBMXNET,
    PACKAGE_LIBTVM_FFI,
    PACKAGE_LIBTVM_RUNTIME,
    SECTION_DAMAGE,
    break_section_headers,
    build_shared,
    c_functions,
)

TVM_FFI_STRINGIFY = "_ZN3tvm3ffi4json9StringifyERKNS0_3AnyENS0_8OptionalIivEE"


def run_static(
    capsys: pytest.CaptureFixture[str], *paths: object
) -> tuple[int, dict[str, Any]]:
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


def test_static_probe_finds_no_blockers_in_the_pip_libraries_read_afresh() -> None:
    # Read from the files, not the cache. (How fast is not asserted here: the machines are
    # shared; the bridge no longer reads ELF files at import, only the probe does.)
    elf_static._CACHE.clear()
    assert bridge_blockers(str(PACKAGE_LIBMXNET), 10901, str(PACKAGE_LIBTVM_FFI)) == []


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
    # Every required symbol of csrc/runtime/symbols.def the fake library lacks, in table order.
    assert static["required_symbols_missing"] == [
        s for s in requirements.MXNET_REQUIRED_SYMBOLS if s not in present
    ]
    assert static["required_symbols_missing"][:2] == ["MXEnginePushSyncND", "MXNDArrayToDLPack"]
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


# ------------------------------------------------------------------ unusable section headers
# MXNet 1.6.0's pip libmxnet.so has a garbage section header table ("Number of section
# headers: 0 (8)", string table index 29 out of range). The loader reads only the program
# headers, so the library works; the probe must read it the same way.

_COMPARED_FIELDS = (
    "soname",
    "needed",
    "rpath",
    "runpath",
    "default_exports",
    "versioned_exports",
    "undefined",
    "version_definitions",
    "version_needs",
    "cxx11_symbols",
    "cpp_symbols",
    "has_version_info",
)

_VERSIONED_SOURCE = (
    "#include <math.h>\n#include <string.h>\n"
    "extern int maybe_there(void) __attribute__((weak));\n"
    "double api_cos(double x) { return cos(x); }\n"
    "void api_copy(char *d, const char *s, size_t n) { memcpy(d, s, n); }\n"
    "int api_old(void) { return maybe_there ? maybe_there() : 1; }\n"
    "int api_hidden(void) { return 2; }\n"
)
_VERSION_SCRIPT = (
    "API_1 { global: api_old; local: *; }; API_2 { global: api_cos; api_copy; } API_1;"
)


def _versioned_library(directory: Path, hash_style: str) -> Path:
    return build_shared(
        directory,
        "libversioned.so",
        _VERSIONED_SOURCE,
        link=[
            "-lm",
            "-Wl,-soname,libversioned.so.2",
            "-Wl,-rpath,$ORIGIN/deps",
            f"-Wl,--hash-style={hash_style}",
        ],
        version_script=_VERSION_SCRIPT,
    )


def _loads_in_a_child(path: Path, symbol: str) -> bool:
    code = f"import ctypes; ctypes.CDLL({str(path)!r}).{symbol}"
    return subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("damage", list(SECTION_DAMAGE))
def test_damaged_section_table_still_loads_but_pyelftools_loses_the_sections(
    tmp_path: Path, damage: str
) -> None:
    lib = break_section_headers(
        _versioned_library(tmp_path, "gnu"), tmp_path / "broken" / "libversioned.so", damage
    )
    assert _loads_in_a_child(lib, "api_cos")  # the loader only needs the program headers
    with lib.open("rb") as stream:
        try:
            dynsym = ELFFile(stream).get_section_by_name(".dynsym")
        except ELFError:
            dynsym = None
    assert dynsym is None


def test_damaged_section_table_looks_like_mxnet_1_6_0_to_readelf(tmp_path: Path) -> None:
    readelf = shutil.which("readelf")
    assert readelf, "readelf (binutils) is required; CI installs build-essential"
    lib = break_section_headers(
        build_shared(tmp_path, "libx.so", c_functions(["x_fn"])),
        tmp_path / "broken.so",
        "like-mxnet-1.6.0",
    )
    header = subprocess.run([readelf, "-h", str(lib)], capture_output=True, text=True,
                            check=False).stdout
    assert "Number of section headers:         0 (8)" in header
    assert "Section header string table index: 29 <corrupt: out of range>" in header


@pytest.mark.parametrize("hash_style", ["gnu", "sysv"])
@pytest.mark.parametrize("damage", list(SECTION_DAMAGE))
def test_damaged_section_table_is_read_from_the_program_headers_with_the_same_facts(
    tmp_path: Path, damage: str, hash_style: str
) -> None:
    # DT_GNU_HASH (gnu) or DT_HASH (sysv) gives the dynamic symbol count.
    good = _versioned_library(tmp_path, hash_style)
    with good.open("rb") as stream:
        segment = next(ELFFile(stream).iter_segments("PT_DYNAMIC"))
        assert isinstance(segment, DynamicSegment)
        tags = {tag.entry.d_tag for tag in segment.iter_tags()}
    assert ("DT_GNU_HASH" in tags, "DT_HASH" in tags) == (hash_style == "gnu", hash_style == "sysv")
    broken = break_section_headers(good, tmp_path / "broken" / "libversioned.so", damage)
    want, got = elf_static.read_elf(str(good)), elf_static.read_elf(str(broken))
    assert want.read_from == "sections" and want.read_notes == [] and want.comments
    assert got.read_from == "program-headers"
    assert {f: getattr(got, f) for f in _COMPARED_FIELDS} == {
        f: getattr(want, f) for f in _COMPARED_FIELDS
    }
    # The facts are real, not two empty readings that agree:
    assert got.soname == "libversioned.so.2" and got.runpath + got.rpath == ["$ORIGIN/deps"]
    assert {"libm.so.6", "libc.so.6"} <= set(got.needed)
    assert got.exports("api_cos") and not got.exports("api_hidden")
    assert got.provides("api_old", "API_1") and got.provides("api_cos", "API_2")
    assert "GLIBC_2.2.5" in got.version_needs["libm.so.6"]
    assert [u.weak for u in got.undefined if u.name == "maybe_there"] == [True]
    assert got.comments == [] and "section header table unusable" in got.read_notes[0]
    assert any("compiler unknown" in n for n in got.read_notes)


def test_unreadable_version_tables_without_sections_leave_versions_unknown(
    tmp_path: Path,
) -> None:
    good = _versioned_library(tmp_path, "gnu")
    with good.open("rb") as stream:
        section = ELFFile(stream).get_section_by_name(".gnu.version_r")
        assert section is not None
        verneed = section["sh_offset"]
    damaged = bytearray(good.read_bytes())
    struct.pack_into("<I", damaged, verneed + 8, 0x7FFFFFFF)  # vn_aux: far past the end
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "libversioned.so").write_bytes(bytes(damaged))
    lib = break_section_headers(
        tmp_path / "damaged" / "libversioned.so", tmp_path / "broken.so", "like-mxnet-1.6.0"
    )
    info = elf_static.read_elf(str(lib))
    assert info.read_from == "program-headers" and info.exports("api_cos")
    assert info.version_needs == {} and not info.has_version_info
    assert any(n.startswith("symbol versions unknown") for n in info.read_notes)
    assert probe_file(str(lib)).missing_versions == []  # unknown is not missing


def test_real_tvm_ffi_with_a_damaged_section_table_reads_the_same(tmp_path: Path) -> None:
    broken = break_section_headers(
        PACKAGE_LIBTVM_FFI, tmp_path / "libtvm_ffi.so", "like-mxnet-1.6.0"
    )
    want, got = elf_static.read_elf(str(PACKAGE_LIBTVM_FFI)), elf_static.read_elf(str(broken))
    assert got.read_from == "program-headers"
    assert {f: getattr(got, f) for f in _COMPARED_FIELDS} == {
        f: getattr(want, f) for f in _COMPARED_FIELDS
    }
    assert got.cxx11_symbols > 0 and got.version_needs["libstdc++.so.6"]
    assert all(got.exports(s) for s in requirements.TVMFFI_REQUIRED_SYMBOLS)


def test_mxnet_with_a_damaged_section_table_lists_missing_symbols_and_needed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    present = ["MXGetVersion", "MXGetLastError", "MXEnginePushAsyncND"]
    good = build_shared(
        tmp_path, "libmxnet.so", c_functions(present), link=["-Wl,--no-as-needed", "-lm"]
    )
    lib = break_section_headers(good, tmp_path / "broken" / "libmxnet.so", "like-mxnet-1.6.0")
    code, report = run_static(capsys, lib)
    static = report["libraries"][str(lib)]["static"]
    assert code == 2  # for the missing symbols, not for the section table
    # Every required symbol of csrc/runtime/symbols.def the fake library lacks, in table order.
    assert static["required_symbols_missing"] == [
        s for s in requirements.MXNET_REQUIRED_SYMBOLS if s not in present
    ]
    assert static["required_symbols_missing"][:2] == ["MXEnginePushSyncND", "MXNDArrayToDLPack"]
    assert "libm.so.6" in static["needed"] and static["loadable"]
    assert static["read_from"] == "program-headers"
    assert "section header table unusable" in static["read_notes"][0]
    assert static["compiler"]["family"] is None
    assert cli.main(["--static", str(lib)]) == 2
    text = capsys.readouterr().out
    assert "program headers" in text and "compiler              unknown" in text


def _full_mxnet(directory: Path, damage: str) -> Path:
    names = [*requirements.MXNET_REQUIRED_SYMBOLS, *requirements.MXNET_OPTIONAL_SYMBOLS]
    good = build_shared(directory, "libmxnet.so", c_functions(names))
    return break_section_headers(good, directory / "broken" / "libmxnet.so", damage)


@pytest.mark.parametrize("damage", list(SECTION_DAMAGE))
def test_bridge_blockers_accepts_an_mxnet_with_a_damaged_section_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    lib = _full_mxnet(tmp_path, damage)
    assert check_bridge(str(lib), 10600) == BridgeCheck(blockers=[], warnings=[])
    assert bridge_blockers(str(lib), 10600, str(PACKAGE_LIBTVM_FFI)) == []
    code, report = run_static(capsys, lib)
    assert code == 0 and report["libraries"][str(lib)]["static"]["read_from"] == "program-headers"


def test_bridge_blockers_names_missing_symbols_of_a_damaged_mxnet(tmp_path: Path) -> None:
    good = build_shared(tmp_path, "libmxnet.so", c_functions(["MXGetVersion", "MXGetLastError"]))
    lib = break_section_headers(good, tmp_path / "broken" / "libmxnet.so", "like-mxnet-1.6.0")
    (reason,) = bridge_blockers(str(lib), 10901)
    assert "MXEnginePushSyncND" in reason and "MXNDArrayToDLPack" in reason


# ------------------------------------------------------------------ unreadable files never block


@pytest.mark.parametrize("kind", ["text file", "truncated ELF", "missing path"])
def test_unreadable_mxnet_file_is_a_warning_not_a_blocker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    lib = tmp_path / "libmxnet.so"
    if kind == "text file":
        lib.write_text("not an ELF file\n")
    elif kind == "truncated ELF":
        lib.write_bytes(PACKAGE_LIBTVM_FFI.read_bytes()[:64])
    result = check_bridge(str(lib), 10901, str(PACKAGE_LIBTVM_FFI))
    assert result.blockers == []
    (warning,) = result.warnings
    assert str(lib) in warning and "not checked" in warning
    with caplog.at_level(logging.WARNING, logger="abi_checks.api"):
        assert bridge_blockers(str(lib), 10901, str(PACKAGE_LIBTVM_FFI)) == []
    assert [r.getMessage() for r in caplog.records] == [warning]


def test_unreadable_tvm_ffi_file_is_a_warning_not_a_blocker(tmp_path: Path) -> None:
    ffi = tmp_path / "libtvm_ffi.so"
    ffi.write_text("not an ELF file\n")
    result = check_bridge(str(PACKAGE_LIBMXNET), 10901, str(ffi))
    assert result.blockers == [] and len(result.warnings) == 1 and str(ffi) in result.warnings[0]


def test_unreadable_file_still_gets_the_version_blocker(tmp_path: Path) -> None:
    lib = tmp_path / "libmxnet.so"
    lib.write_text("not an ELF file\n")
    result = check_bridge(str(lib), 10500)
    assert result.blockers == [requirements.MXNET_TOO_OLD_REASON.format(found="1.5.0")]
    assert len(result.warnings) == 1
