"""MXNet and tvm-ffi symbols are taken at run time from the loaded copies, with clear errors."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
from pathlib import Path

import pytest
from packaging.version import Version

from abi_checks.api import check_bridge
from abi_checks.requirements import decode_mxnet_version, mxnet_version_problem
from bridge_cffi.errors import BridgeLibraryError
from bridge_cffi.facts.process_maps import mapped_library_path
from bridge_cffi.mxnet.binding import check_mxnet_supported, mxnet_version_code
from conftest import run_python

PARTIAL_MXNET = """
int MXGetVersion(int* out) { *out = 10901; return 0; }
const char* MXGetLastError(void) { return "fake"; }
int MXEnginePushSyncND(void) { return 0; }
"""


@pytest.mark.parametrize(("version", "refused"),
                         [("1.4.1", True), ("1.5.0", True), ("1.5.1", False), ("1.9.1", False)])
def test_mxnet_before_1_5_1_is_refused_with_the_reason(version: str, refused: bool) -> None:
    problem = mxnet_version_problem(Version(version))
    assert (problem is not None) == refused
    if problem is not None:  # (refused, as asserted above)
        assert "NDArrayHandle*" in problem and "#15774" in problem and version in problem


def test_mxnet_version_code_is_decoded() -> None:
    assert decode_mxnet_version(10901) == Version("1.9.1")
    assert decode_mxnet_version(10501) == Version("1.5.1")


def test_bound_libraries_are_the_ones_python_loaded() -> None:
    import mxnet
    import tvm_ffi

    # The bridge binds the files /proc/self/maps shows: they must be the very files the two
    # packages' own ctypes handles opened (a second copy would be a second runtime).
    assert mapped_library_path("libmxnet") == mxnet.base._LIB._name
    tvm_ffi_path = mapped_library_path("libtvm_ffi")
    assert tvm_ffi_path is not None and os.path.samefile(tvm_ffi_path, tvm_ffi.LIB._name)
    assert mapped_library_path("libnot_loaded_by_anyone") is None


def build_partial_mxnet(tmp_path: Path, name: str) -> Path:
    """Compile PARTIAL_MXNET (an "MXNet" missing symbols the bridge requires) as <name>.so."""
    source = tmp_path / f"{name}.c"
    source.write_text(PARTIAL_MXNET)
    library = tmp_path / f"{name}.so"
    subprocess.run(["gcc", "-shared", "-fPIC", str(source), "-o", str(library)], check=True)
    return library


def test_missing_symbol_is_named_with_the_library_path(tmp_path: Path) -> None:
    library = build_partial_mxnet(tmp_path, "libpartial_mxnet")
    code = f"""
import ctypes, json
ctypes.CDLL({str(library)!r})  # loaded first, as MXNet would be
from bridge_cffi.native import ffi, lib
error = ffi.new("char[]", lib.BRIDGE_ERROR_CAPACITY)
status = lib.bridge_mxnet_bind({str(library)!r}.encode(), error)
print(json.dumps([status, ffi.string(error).decode()]))
"""
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    status, message = json.loads(done.stdout)
    assert status == 4  # BRIDGE_E_SYMBOL
    assert message == f"symbol MXNDArrayToDLPack not found in {library}"


def test_a_library_not_loaded_is_never_loaded_by_the_bridge(tmp_path: Path) -> None:
    library = build_partial_mxnet(tmp_path, "libunloaded")
    code = f"""
from bridge_cffi.native import ffi, lib
error = ffi.new("char[]", lib.BRIDGE_ERROR_CAPACITY)
print(lib.bridge_mxnet_bind({str(library)!r}.encode(), error), ffi.string(error).decode())
print(open("/proc/self/maps").read().count("libunloaded"))
"""
    done = run_python(code)
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("4 libmxnet at ") and "is not loaded in this process" in lines[0]
    assert lines[1] == "0"


def test_bridge_refuses_with_the_probes_reasons(tmp_path: Path) -> None:
    library = build_partial_mxnet(tmp_path, "libpartial_mxnet")
    # The bridge's refusal is its C bind, which names the missing symbol: in a child, where the
    # partial library is the one loaded and nothing is bound yet.
    code = f"""
import ctypes, json
ctypes.CDLL({str(library)!r})  # loaded first, as MXNet would be
from bridge_cffi.errors import BridgeLibraryError
from bridge_cffi.mxnet.binding import check_mxnet_supported
refusals = []
for version_code in (10901, 10500):
    try:
        check_mxnet_supported({str(library)!r}, version_code)
        refusals.append(None)
    except BridgeLibraryError as refused:
        refusals.append(str(refused))
print(json.dumps(refusals))
"""
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    missing_symbol, too_old = json.loads(done.stdout)
    assert missing_symbol is not None and "MXNDArrayToDLPack" in missing_symbol
    assert "abi_checks" in missing_symbol
    assert too_old is not None and "#15774" in too_old
    # The probe's check reads the same symbols from the file itself (its ELF read).
    blockers = check_bridge(str(library), 10901).blockers
    assert any("MXNDArrayToDLPack" in reason for reason in blockers)


def _installed_mxnet_version_code() -> int:
    """MXGetVersion's code, asked of the installed libmxnet through MXNet's own ctypes handle."""
    import mxnet

    code = ctypes.c_int()
    assert mxnet.base._LIB.MXGetVersion(ctypes.byref(code)) == 0
    return code.value


def test_installed_mxnet_passes_the_probes_checks() -> None:
    import mxnet

    path, code = mxnet.base._LIB._name, _installed_mxnet_version_code()
    # The code is the installed library's (the matrix runs other MXNet versions too), read the
    # same way through the bridge's C binding, and it decodes to the package's version.
    assert mxnet_version_code() == code
    assert decode_mxnet_version(code) == Version(mxnet.__version__)
    result = check_bridge(path, code)
    assert (result.blockers, result.warnings) == ([], [])
    check_mxnet_supported(path, code)  # the bridge's own refusal path lets it through
    # The same file is refused under MXGetVersion's code for 1.5.0: the check reads the version
    # it is given, so the pass above is about this library's version, not a constant.
    with pytest.raises(BridgeLibraryError, match="#15774"):
        check_mxnet_supported(path, 10500)


def test_without_a_loaded_cuda_driver_gpu_arrays_are_refused_with_the_reason() -> None:
    # A CPU build of MXNet maps no libcuda.so.1: binding the CUDA driver names what is missing,
    # and the GPU self-test reports "no GPU" with why (GPU arrays cannot even be made here).
    code = """
import mxnet
from bridge_cffi.mxnet import selftests
from bridge_cffi.errors import BridgeLibraryError
from bridge_cffi.mxnet.binding import bind_cuda
print(selftests.gpu_stream_layout(0))
try:
    bind_cuda()
    print("bound")
except BridgeLibraryError as error:
    print("refused:", error)
"""
    done = run_python(code)
    lines = done.stdout.strip().splitlines()
    if "libcuda.so.1" in Path("/proc/self/maps").read_text():
        assert lines[-1] == "bound", done.stdout + done.stderr
        return
    assert lines[0] == "('no GPU', 'this MXNet is built without CUDA')", done.stdout + done.stderr
    assert lines[1].startswith("refused: the CUDA driver (libcuda) at libcuda.so.1 is not loaded")


def test_capability_flags_are_the_optional_mxnet_symbols_libmxnet_exports() -> None:
    import mxnet as mx

    from abi_checks import requirements
    from abi_checks.elf_static import read_elf
    from bridge_cffi.mxnet.binding import capabilities
    from bridge_cffi.native import lib

    assert mxnet_version_code() >= 10501  # binds MXNet
    exports = read_elf(mx.base._LIB._name)
    found = capabilities()
    for entry in requirements.SYMBOLS:
        if entry.library == "mxnet" and entry.kind == requirements.OPTIONAL:
            assert found[entry.name] == exports.exports(entry.name), entry.name
    bound = int(lib.bridge_symbols_bound())
    required = [i for i, s in enumerate(requirements.SYMBOLS)
                if s.library == "mxnet" and s.kind == requirements.REQUIRED]
    assert all(bound >> i & 1 for i in required)
