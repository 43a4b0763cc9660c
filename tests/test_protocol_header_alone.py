"""protocol.h as a contract: kernels built from the installed header alone, outside the package,
and DLPack's header included before or after it.

The kernels (tests/c_kernels/header_only_kernels.c) and protocol.h are copied into an empty
directory and built there with only that directory on the include path, the public header's
strict flags and -fvisibility=hidden, by gcc and by clang; then they run on MXNet arrays
through to_mxnet_func and are checked against numpy.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

import bridge_cffi
from conftest import REPO, needs_mxnet_1_6

STRICT_C = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"]
STRICT_CXX = ["-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic"]
KERNEL_SOURCE = REPO / "tests" / "c_kernels" / "header_only_kernels.c"
COMPILERS = ["gcc", "clang"]


def _require(compiler: str) -> str:
    found = shutil.which(compiler)
    if found is None:
        pytest.skip(f"{compiler} is not installed (.ci/run installs Debian's clang package)")
    return found


def _header_only_tree(root: Path) -> Path:
    """An include directory holding protocol.h and nothing else, as a third party copies it."""
    include = root / "include"
    (include / "bridge_cffi").mkdir(parents=True)
    installed = Path(bridge_cffi.get_include()) / "bridge_cffi" / "protocol.h"
    shutil.copy(installed, include / "bridge_cffi" / "protocol.h")
    assert sorted(p.name for p in include.rglob("*") if p.is_file()) == ["protocol.h"]
    return include


@pytest.fixture(scope="module", params=COMPILERS)
def header_only_library(request: pytest.FixtureRequest,
                        tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = _require(request.param)
    root = tmp_path_factory.mktemp(f"header_only_{request.param}")
    include = _header_only_tree(root)
    source = root / KERNEL_SOURCE.name
    shutil.copy(KERNEL_SOURCE, source)
    library = root / f"libheader_only_{request.param}.so"
    done = subprocess.run(
        [compiler, *STRICT_C, "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-I", str(include),
         str(source), "-o", str(library)],
        capture_output=True, text=True, cwd=root,
        check=False,
    )
    assert done.returncode == 0, f"{compiler}:\n{done.stderr}"
    return library


def test_axpy_runs_on_mxnet_arrays(header_only_library: Path) -> None:
    axpy = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(header_only_library), const_loc=[0])
    # The kernel left `name` NULL (protocol.h allows it): the bridge shows its own default.
    assert axpy.name == "c_kernel"
    rng = np.random.default_rng(15)
    x = rng.standard_normal(37).astype("float32")
    y = rng.standard_normal(37).astype("float32")
    mx_y = mx.nd.array(y)
    axpy(mx.nd.array(x), mx_y, 0.25)
    np.testing.assert_allclose(mx_y.asnumpy(), y + np.float32(0.25) * x, rtol=1e-6)


def test_axpy_reads_misaligned_views_through_byte_offset(header_only_library: Path) -> None:
    axpy = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(header_only_library), const_loc=[0])
    base = np.arange(40, dtype="float32")
    whole = mx.nd.array(base)
    axpy(whole[1:10], whole[21:30], -3.0)  # one array, two misaligned views, read and written
    expected = base.copy()
    expected[21:30] += np.float32(-3.0) * base[1:10]
    np.testing.assert_array_equal(whole.asnumpy(), expected)


def test_axpy_with_one_array_at_both_positions(header_only_library: Path) -> None:
    axpy = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(header_only_library), const_loc=[0])
    values = np.linspace(-2, 2, 16, dtype="float32")
    x = mx.nd.array(values)
    axpy(x, x, 2.0)  # the aliasing the header describes: one array read and written
    np.testing.assert_array_equal(x.asnumpy(), values + np.float32(2.0) * values)


def test_axpy_error_message_reaches_the_wait(header_only_library: Path) -> None:
    axpy = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(header_only_library), const_loc=[0])
    out = mx.nd.zeros((4,), dtype="float64")
    axpy(mx.nd.ones((4,)), out, 1.0)
    with pytest.raises(mx.base.MXNetError,
                       match="axpy: x and y must be float32, got codes 2/2 with 32/64 bits"):
        out.asnumpy()
    mx.nd.waitall()


@needs_mxnet_1_6
def test_masked_fill_gets_bools_and_staged_views(header_only_library: Path) -> None:
    fill = bridge_cffi.to_mxnet_func(
        bridge_cffi.load_c_kernel(header_only_library, "masked_fill_create"), const_loc=[0]
    )
    assert fill.name == "masked_fill"
    mask = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    out = mx.nd.array(np.arange(11, dtype="float32"))
    fill(mx.nd.array(mask, dtype="bool"), out, -1.0)
    np.testing.assert_array_equal(out.asnumpy(), np.where(mask, -1.0, np.arange(11)))
    # Misaligned views to a kernel without BRIDGE_KERNEL_ACCEPTS_BYTE_OFFSET: it refuses any
    # byte_offset, so this passes only if the bridge staged both views as the header says.
    whole_mask = mx.nd.array(np.tile(mask, 2), dtype="bool")
    whole = mx.nd.array(np.zeros(22, dtype="float32"))
    fill(whole_mask[3:9], whole[13:19], 5.0)
    expected = np.zeros(22, dtype="float32")
    expected[13:19] = np.where(np.tile(mask, 2)[3:9], 5.0, 0.0)
    np.testing.assert_array_equal(whole.asnumpy(), expected)


# ---- DLPack's header before or after protocol.h ----

#: Uses what a real dlpack.h declares beyond the three types protocol.h needs, so that the
#: "after" order fails to compile if protocol.h's stand-in lacks any of it.
USES_DLPACK = """
static int uses_dlpack(DLManagedTensorVersioned* managed) {
  DLDeviceType type = managed->dl_tensor.device.device_type;
  DLDataTypeCode code = kDLFloat8_e4m3fn;
  DLPackVersion version = {DLPACK_MAJOR_VERSION, DLPACK_MINOR_VERSION};
  return (type == kDLCUDA) + (int)code + (int)version.major +
         (managed->flags & DLPACK_FLAG_BITMASK_READ_ONLY ? 1 : 0) + (int)sizeof(DLManagedTensor);
}
int (*keep)(DLManagedTensorVersioned*) = uses_dlpack;
int kernel_size = sizeof(bridge_kernel);
"""


def _tvm_ffi_dlpack_include() -> Path:
    """tvm-ffi's wheel ships the real DLPack header as tvm_ffi/include/dlpack/dlpack.h."""
    import tvm_ffi

    include = Path(tvm_ffi.__file__).parent / "include"
    assert (include / "dlpack" / "dlpack.h").is_file(), f"no dlpack/dlpack.h under {include}"
    return include


def _compile(compiler: str, flags: list[str], source: Path,
             includes: list[Path]) -> subprocess.CompletedProcess[str]:
    command = [compiler, *flags, *(arg for path in includes for arg in ("-I", str(path))),
               "-c", str(source), "-o", str(source.with_suffix(".o"))]
    return subprocess.run(command, capture_output=True, text=True, check=False)


ORDERS = {
    # The real header first: its declarations are used, protocol.h declares none.
    "dlpack_first": ("#include <dlpack/dlpack.h>\n#include <bridge_cffi/protocol.h>\n",
                     ("#ifdef BRIDGE_CFFI_DECLARED_DLPACK\n"
                      "#error protocol.h redeclared DLPack\n#endif\n")),
    # protocol.h first: the real header is skipped, and everything it declares is there anyway.
    "protocol_first": ("#include <bridge_cffi/protocol.h>\n#include <dlpack/dlpack.h>\n",
                       ("#ifndef BRIDGE_CFFI_DECLARED_DLPACK\n"
                        "#error expected the DLPack declarations of protocol.h\n#endif\n")),
}
LANGUAGES = {"gcc": ("c", STRICT_C), "g++": ("cpp", STRICT_CXX), "clang": ("c", STRICT_C),
             "clang++": ("cpp", STRICT_CXX)}


@pytest.mark.parametrize("order", sorted(ORDERS))
@pytest.mark.parametrize("compiler", sorted(LANGUAGES))
def test_real_dlpack_header_before_or_after(order: str, compiler: str, tmp_path: Path) -> None:
    found = _require(compiler)
    includes, check = ORDERS[order]
    suffix, flags = LANGUAGES[compiler]
    source = tmp_path / f"{order}.{suffix}"
    source.write_text(includes + check + USES_DLPACK)
    header_only = _header_only_tree(tmp_path)
    done = _compile(found, flags, source, [header_only, _tvm_ffi_dlpack_include()])
    assert done.returncode == 0, f"{compiler} {order}:\n{done.stderr}"


def test_old_dlpack_header_first_is_a_clear_compile_error(tmp_path: Path) -> None:
    """MXNet 1.x ships DLPack 0.2 (DLContext, `ctx`), which protocol.h cannot use."""
    mxnet_include = Path(mx.__file__).parent / "include"
    old = mxnet_include / "dlpack" / "dlpack.h"
    if not old.is_file():
        pytest.skip(f"this MXNet wheel ships no {old}")
    assert "DLContext" in old.read_text()
    source = tmp_path / "old_first.c"
    source.write_text("#include <dlpack/dlpack.h>\n#include <bridge_cffi/protocol.h>\n")
    done = _compile("gcc", STRICT_C, source, [_header_only_tree(tmp_path), mxnet_include])
    assert done.returncode != 0
    assert "protocol.h needs DLPack 0.4 or later" in done.stderr, done.stderr


LAYOUT_PROBE = r"""
#include <stddef.h>
#include <stdio.h>
#include INCLUDE
int main(void) {
  printf("DLDevice %zu %zu\n", sizeof(DLDevice), offsetof(DLDevice, device_id));
  printf("DLDataType %zu %zu %zu\n", sizeof(DLDataType), offsetof(DLDataType, bits),
         offsetof(DLDataType, lanes));
  printf("DLTensor %zu %zu %zu %zu %zu %zu %zu\n", sizeof(DLTensor), offsetof(DLTensor, device),
         offsetof(DLTensor, ndim), offsetof(DLTensor, dtype), offsetof(DLTensor, shape),
         offsetof(DLTensor, strides), offsetof(DLTensor, byte_offset));
  printf("DLManagedTensor %zu %zu %zu\n", sizeof(DLManagedTensor),
         offsetof(DLManagedTensor, manager_ctx), offsetof(DLManagedTensor, deleter));
  printf("DLManagedTensorVersioned %zu %zu %zu %zu\n", sizeof(DLManagedTensorVersioned),
         offsetof(DLManagedTensorVersioned, manager_ctx), offsetof(DLManagedTensorVersioned, flags),
         offsetof(DLManagedTensorVersioned, dl_tensor));
  printf("kDLMAIA %d kDLFloat4_e2m1fn %d sizeof(DLDeviceType) %zu\n", (int)kDLMAIA,
         (int)kDLFloat4_e2m1fn, sizeof(DLDeviceType));
  return 0;
}
"""


def test_protocol_dlpack_layout_matches_the_real_header(tmp_path: Path) -> None:
    outputs = {}
    for label, include in (("real", "<dlpack/dlpack.h>"), ("protocol", "<bridge_cffi/protocol.h>")):
        source = tmp_path / f"layout_{label}.c"
        source.write_text(f"#define INCLUDE {include}\n" + LAYOUT_PROBE)
        program = tmp_path / f"layout_{label}"
        subprocess.run(
            ["gcc", *STRICT_C, "-I", str(_header_only_tree(tmp_path / label)), "-I",
             str(_tvm_ffi_dlpack_include()), str(source), "-o", str(program)],
            check=True, capture_output=True, text=True,
        )
        outputs[label] = subprocess.run([str(program)], check=True, capture_output=True,
                                        text=True).stdout
    assert outputs["protocol"] == outputs["real"]
