"""Find every copy of each library where the user's process (or its packages) would look.

Search orders are copied from the packages' own lookup code, so `predicted` names the copy
they would pick without importing anything:
- mxnet 1.x `libinfo.find_lib_path`: MXNET_LIBRARY_PATH (an absolute file), else the first
  existing of LD_LIBRARY_PATH dirs, the package dir, `../../lib`, `../../build`, `./../../../`.
- tvm (0.2x) `libinfo.package_lib_paths` + tvm-ffi's `_find_library_by_basename`:
  TVM_LIBRARY_PATH (a directory), `tvm/lib`, the dev build dirs, then LD_LIBRARY_PATH and PATH.
- tvm-ffi: the apache-tvm-ffi wheel's RECORD first (so its env vars rarely matter), then
  `tvm_ffi/lib`, the dev build dirs, LD_LIBRARY_PATH and PATH.
ldconfig's cache is listed too (a copy there can be picked up through DT_NEEDED).
"""

from __future__ import annotations

import glob
import importlib.machinery
import importlib.metadata
import importlib.util
import logging
import os
from dataclasses import dataclass

from abi_checks import ldcache
from abi_checks.facts import LibraryCopy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """A library the probe looks for: its role, file name and owning Python package."""

    role: str
    filename: str
    package: str
    distributions: tuple[str, ...]


TARGETS: tuple[Target, ...] = (
    Target("mxnet", "libmxnet.so", "mxnet", ("mxnet", "mxnet-mkl", "mxnet-cu112", "mxnet-native")),
    Target("tvm_ffi", "libtvm_ffi.so", "tvm_ffi", ("apache-tvm-ffi",)),
    Target("tvm_runtime", "libtvm_runtime.so", "tvm", ("apache-tvm", "tvm")),
    Target("tvm_compiler", "libtvm_compiler.so", "tvm", ("apache-tvm", "tvm")),
    Target("tvm", "libtvm.so", "tvm", ("apache-tvm", "tvm")),
)


def package_dir(package: str) -> str | None:
    """Directory of a top-level package, located without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.abspath(next(iter(spec.submodule_search_locations)))


def package_version(distributions: tuple[str, ...]) -> str | None:
    """Installed version of the first of `distributions` that is installed."""
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:  # noqa: PERF203 - a miss is the usual case
            continue
    return None


def _env_dirs(name: str) -> list[str]:
    value = os.environ.get(name, "")
    return [p.strip() for p in value.split(":") if p.strip()]


def _record_path(distribution: str, filename: str) -> str | None:
    # tvm-ffi trusts the wheel's RECORD before any directory; so do we.
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or []:
        if file.name == filename:
            return str(file.locate())
    return None


def _candidates(target: Target) -> tuple[list[tuple[str, str]], str | None]:
    """(path, source) in the package's search order, and the path it would pick."""
    pkg = package_dir(target.package)
    found: list[tuple[str, str]] = []
    name = target.filename
    if target.role == "mxnet":
        env = os.environ.get("MXNET_LIBRARY_PATH")
        if env:
            found.append((env, "MXNET_LIBRARY_PATH"))
        found += [(os.path.join(d, name), "LD_LIBRARY_PATH") for d in _env_dirs("LD_LIBRARY_PATH")]
        if pkg:
            found.append((os.path.join(pkg, name), "package"))
            found += [
                (os.path.join(pkg, rel, name), "package-dev")
                for rel in ("../../lib", "../../build")
            ]
        found.append((os.path.join("../../..", name), "cwd-relative"))
        env_ok = env is not None and os.path.isabs(env) and os.path.isfile(env)
        predicted = (
            env
            if env_ok
            else next((p for p, s in found[1 if env else 0 :] if os.path.isfile(p)), None)
        )
    else:
        record = _record_path(target.distributions[0], name)
        if record:
            found.append((record, "package"))
        if target.package == "tvm":
            found += [
                (os.path.join(d, name), "TVM_LIBRARY_PATH") for d in _env_dirs("TVM_LIBRARY_PATH")
            ]
        if pkg:
            found.append((os.path.join(pkg, "lib", name), "package"))
            found += [
                (os.path.join(pkg, rel, name), "package-dev")
                for rel in ("../../build/lib", "../../lib")
            ]
        found += [(os.path.join(d, name), "LD_LIBRARY_PATH") for d in _env_dirs("LD_LIBRARY_PATH")]
        found += [(os.path.join(d, name), "PATH") for d in _env_dirs("PATH")]
        predicted = next((p for p, _ in found if os.path.isfile(p)), None)
    cached = ldcache.ldconfig_lookup(name)
    if cached:
        found.append((cached, "ldconfig"))
    return found, predicted


def _merge(found: list[tuple[str, str]], predicted: str | None) -> list[LibraryCopy]:
    by_path: dict[str, LibraryCopy] = {}
    by_inode: dict[tuple[int, int], str] = {}
    predicted_abs = os.path.abspath(predicted) if predicted else None
    for candidate, source in found:
        if not os.path.isfile(candidate):
            continue
        path = os.path.normpath(os.path.abspath(candidate))
        if path in by_path:
            if source not in by_path[path].sources:
                by_path[path].sources.append(source)
            continue
        st = os.stat(path)
        copy = LibraryCopy(path=path, realpath=os.path.realpath(path), sources=[source])
        copy.same_file_as = by_inode.get((st.st_dev, st.st_ino))
        by_inode.setdefault((st.st_dev, st.st_ino), path)
        copy.predicted = path == (os.path.normpath(predicted_abs) if predicted_abs else None)
        by_path[path] = copy
    return list(by_path.values())


def find_copies(target: Target) -> list[LibraryCopy]:
    """Every existing copy of `target`, in search order, the predicted one flagged."""
    found, predicted = _candidates(target)
    return _merge(found, predicted)


def find_bridge_extension() -> list[LibraryCopy]:
    """The bridge's compiled extension (bridge_cffi/_native*.so), located without importing."""
    pkg = package_dir("bridge_cffi")
    if pkg is None:
        return []
    paths = sorted(glob.glob(os.path.join(pkg, "_native*.so")))
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    loadable = [p for p in paths if any(p.endswith("_native" + s) for s in suffixes)]
    return _merge([(p, "package") for p in paths], loadable[0] if loadable else None)


def mark_mapped(copies: list[LibraryCopy], mapped: list[str], filename: str) -> list[LibraryCopy]:
    """Flag the copies a child mapped (matched by inode, so symlinks count as their target);
    add mapped files named `filename` that no search found.
    """
    keys: dict[tuple[int, int], str] = {}
    for path in mapped:
        try:
            st = os.stat(path)
        except OSError:
            continue
        keys[(st.st_dev, st.st_ino)] = path
    seen: set[tuple[int, int]] = set()
    for copy in copies:
        try:
            st = os.stat(copy.path)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in keys and copy.same_file_as is None:
            copy.mapped = True
            seen.add(key)
    for key, path in keys.items():
        if key not in seen and os.path.basename(path) == filename:
            copies.append(LibraryCopy(path, os.path.realpath(path), ["mapped"], mapped=True))
    return copies
