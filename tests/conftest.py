"""Shared fixtures, and the strict mode CI runs in: a skipped test is a failed test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import mxnet
import pytest

# The deadlock watchdog (pyproject.toml's `timeout`): imported here so that an environment
# without it fails at collection instead of running every test with no timeout.
import pytest_timeout  # noqa: F401
from packaging.version import Version

import bridge_cffi

MXNET_VERSION = Version(mxnet.__version__)

#: mx.np and the bool dtype arrived in MXNet 1.6; the matrix runs the core tests on 1.5.1 too.
needs_mxnet_1_6 = pytest.mark.xfail(
    MXNET_VERSION < Version("1.6"),
    reason=f"MXNet {MXNET_VERSION} has no mx.np arrays and no bool dtype (both arrived in 1.6)",
    strict=True,
)

def _tvm_version() -> Version | None:
    try:
        from importlib.metadata import version

        return Version(version("apache-tvm"))
    except Exception:  # noqa: BLE001 - no apache-tvm (e.g. the PackedFunc-generation cells)
        return None


TVM_VERSION = _tvm_version()

#: The un-built path reads TVM 0.27's TIR (tvm.s_tir, tvm.tirx); the matrix runs the core tests
#: on TVM 0.25 and 0.26 too, where those modules do not exist.
needs_tvm_0_27 = pytest.mark.xfail(
    TVM_VERSION is not None and TVM_VERSION < Version("0.27"),
    reason=f"apache-tvm {TVM_VERSION}: the un-built TVM path needs TVM 0.27's tvm.s_tir",
    strict=True,
)

STRICT = os.environ.get("BRIDGE_CFFI_STRICT") == "1"
#: On a GPU machine (tools/gpu/run_all.sh): every skip fails, the no-GPU one included.
GPU_STRICT = os.environ.get("BRIDGE_CFFI_GPU_STRICT") == "1"
#: How tests/gpu/conftest.py begins the reason of its skips on a machine with no GPU: the one
#: skip strict mode lets stand (CI has no GPU), and only on tests marked `gpu`.
NO_GPU_SKIP = "no GPU here: "

#: tests/packed_func/ needs a TVM of the PackedFunc generation (hhb-tvm), which cannot share an
#: environment with apache-tvm: `nox -s packed_func` runs it in its own, with this set.
PACKED_FUNC_TVM = os.environ.get("BRIDGE_CFFI_PACKED_FUNC_TVM") == "1"
collect_ignore = [] if PACKED_FUNC_TVM else ["packed_func"]
REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(
    config: pytest.Config,  # noqa: ARG001 - pytest's hook signature
    items: list[pytest.Item],
) -> None:
    """tests/gpu/ is collected everywhere: marked `gpu`, and skipped, with the reason, where
    MXNet sees no GPU (the reason begins with NO_GPU_SKIP).
    """
    gpu_dir = REPO / "tests" / "gpu"
    gpu_items = [item for item in items if gpu_dir in Path(str(item.fspath)).parents]
    if not gpu_items:
        return
    from bridge_cffi.mxnet.selftests import gpu_absent_reason

    absent = gpu_absent_reason()
    for item in gpu_items:
        item.add_marker(pytest.mark.gpu)
        if absent is not None:
            item.add_marker(pytest.mark.skip(reason=f"{NO_GPU_SKIP}{absent}"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if (STRICT or GPU_STRICT) and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        no_gpu = str(reason).removeprefix("Skipped: ").startswith(NO_GPU_SKIP)
        if no_gpu and not GPU_STRICT and item.get_closest_marker("gpu") is not None:
            return
        report.outcome = "failed"
        mode = "BRIDGE_CFFI_GPU_STRICT=1" if GPU_STRICT else "BRIDGE_CFFI_STRICT=1"
        report.longrepr = f"skipped in strict mode ({mode}): {reason}"


def run_python(code: str, env: dict[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (own MXNet engine), returning its output."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=REPO, check=False)


def compile_c_kernels(output_dir: Path, compiler: str = "gcc") -> Path:
    """Compile tests/c_kernels/scale_kernels.c against the public header into a shared library."""
    library = output_dir / f"libscale_kernels_{compiler}.so"
    subprocess.run(
        [compiler, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
         "-I", bridge_cffi.get_include(), str(REPO / "tests" / "c_kernels" / "scale_kernels.c"),
         "-o", str(library)],
        check=True, capture_output=True, text=True,
    )
    return library


@pytest.fixture(scope="session")
def c_kernel_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The protocol test kernels, built by gcc for this session."""
    return compile_c_kernels(tmp_path_factory.mktemp("c_kernels"))
