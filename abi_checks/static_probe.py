"""Static layer: turn one ELF file into StaticFacts (symbols, compiler, ABI, loadability)."""

from __future__ import annotations

import importlib.metadata
import os
import re
from dataclasses import asdict

from abi_checks import ldcache, requirements
from abi_checks.elf_static import ElfInfo, ElfReadError, needed_versions, newest_versions, read_elf
from abi_checks.facts import Compiler, StaticFacts
from abi_checks.load_resolution import LoadCheck, check_load

#: Symbols each role must / may export (roles without an entry have no symbol contract).
SYMBOL_SETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "mxnet": (requirements.MXNET_REQUIRED_SYMBOLS, requirements.MXNET_OPTIONAL_SYMBOLS),
    "tvm_ffi": (requirements.TVMFFI_REQUIRED_SYMBOLS, requirements.TVMFFI_OPTIONAL_SYMBOLS),
}

_GCC = re.compile(r"GCC: \(.*?\) (\d+(?:\.\d+)+)")
_CLANG = re.compile(r"clang version (\d+(?:\.\d+)+)")


def compiler_of(comments: list[str]) -> Compiler:
    """The compiler that built most of the file: clang if named, else the newest GCC.

    Older GCC strings usually come from the distribution's startup objects (e.g. RHEL 8's
    GCC 8.5 crt files beside devtoolset's GCC 14), not from the library's own code.
    """
    for text in comments:
        match = _CLANG.search(text)
        if match:
            return Compiler("clang", match.group(1), comments)
    versions = [m.group(1) for m in map(_GCC.search, comments) if m]
    if not versions:
        return Compiler(None, None, comments)
    newest = max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))
    return Compiler("gcc", newest, comments)


def string_abi_of(info: ElfInfo) -> str:
    """'cxx11' if any mangled name has __cxx11, 'old' if C++ names exist without, else 'none'."""
    if info.cxx11_symbols:
        return "cxx11"
    return "old" if info.cpp_symbols else "none"


def role_of(path: str, info: ElfInfo | None = None) -> str:
    """Guess a file's role from its name, then from what it exports."""
    base = path.rsplit("/", 1)[-1]
    for prefix, role in (
        ("libmxnet", "mxnet"),
        ("libtvm_ffi", "tvm_ffi"),
        ("libtvm_runtime", "tvm_runtime"),
        ("libtvm_compiler", "tvm_compiler"),
        ("libtvm.", "tvm"),
    ):
        if base.startswith(prefix):
            return role
    if info is not None:
        if any(info.exports(s) for s in requirements.MXNET_REQUIRED_SYMBOLS):
            return "mxnet"
        if any(info.exports(s) for s in requirements.TVMFFI_REQUIRED_SYMBOLS):
            return "tvm_ffi"
    return "file"


def _system_provides(check: LoadCheck) -> dict[str, str]:
    provided: list[str] = []
    for soname in ("libc.so.6", "libstdc++.so.6"):
        path = check.provider_of(soname) or ldcache.system_library(soname)
        if path is None:
            continue
        try:
            provided += read_elf(path).version_definitions
        except ElfReadError:
            continue
    return newest_versions(provided)


def _remedies(check: LoadCheck, tvm_version: str | None) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    remedies: list[str] = []
    for dep in check.missing_libraries:
        problems.append(f"{dep.needed_by} needs {dep.soname}, which the loader cannot find")
        remedies.append(
            f"install the package that provides {dep.soname} or add its directory to "
            "LD_LIBRARY_PATH"
        )
    problems.extend(
        f"{miss.needed_by} needs {miss.version} from {miss.soname}, but {miss.provider} "
        "does not define it"
        for miss in check.missing_versions
    )
    if check.missing_versions:
        remedies.append(
            "the C/C++ runtime found is older than the library was built for: put a newer "
            "libstdc++/libc first (e.g. LD_LIBRARY_PATH to a newer toolchain's lib directory) or "
            "install a build of the library made for this system"
        )
    for sym in check.missing_symbols:
        at = f"@{sym.version}" if sym.version else ""
        problems.append(
            f"undefined symbol {sym.name}{at} needed by {sym.needed_by} is exported by no "
            "library in its dependency tree, so it will not load"
        )
    tvmffi_missing = [
        s.name
        for s in check.missing_symbols
        if s.name.startswith(
            (requirements.TVMFFI_CPP_SYMBOL_PREFIX, requirements.TVMFFI_C_SYMBOL_PREFIX)
        )
    ]
    if tvmffi_missing:
        remedies.append(tvm_ffi_pin_remedy(tvm_version))
    elif check.missing_symbols:
        remedies.append(
            "the library was built against a different version of one of its dependencies: "
            "install matching versions"
        )
    return problems, remedies


def tvm_ffi_pin_remedy(tvm_version: str | None) -> str:
    """How to fix a TVM build that needs tvm-ffi symbols the installed tvm-ffi lacks."""
    pin = requirements.KNOWN_TVM_FFI_PINS.get(tvm_version or "")
    if pin:
        return (
            f"pin apache-tvm-ffi to the version this TVM build was made against: "
            f"pip install 'apache-tvm-ffi=={pin}' (apache-tvm {tvm_version} declares a wider "
            "range than its libraries accept)"
        )
    built = f"apache-tvm {tvm_version}" if tvm_version else "the installed TVM"
    return (
        f"pin apache-tvm-ffi to a version matching the TVM build: {built} needs tvm-ffi C++ "
        "symbols the installed apache-tvm-ffi no longer exports; install the apache-tvm-ffi "
        "release that was current when that TVM was built (pip install 'apache-tvm-ffi==X.Y.Z')"
    )


def wheel_context(path: str, role: str) -> tuple[dict[str, str], str | None]:
    """For a TVM library inside a site-packages `tvm/lib`: the sibling apache-tvm-ffi's
    libtvm_ffi.so (which `import tvm` loads first) and the installed apache-tvm version.
    """
    if role not in ("tvm_runtime", "tvm_compiler", "tvm"):
        return {}, None
    lib_dir = os.path.dirname(os.path.abspath(path))
    site = os.path.dirname(os.path.dirname(lib_dir))
    preloaded: dict[str, str] = {}
    ffi = os.path.join(site, "tvm_ffi", "lib", "libtvm_ffi.so")
    if os.path.isfile(ffi):
        preloaded["libtvm_ffi.so"] = ffi
    version = None
    for dist in importlib.metadata.distributions(path=[site]):
        if dist.metadata["Name"] in ("apache-tvm", "tvm"):
            version = dist.version
    return preloaded, version


def _tree_exports(check: LoadCheck, root: ElfInfo, symbol: str) -> bool:
    """Would dlsym(handle, symbol) on this library find it (itself or a dependency)?"""
    if root.exports(symbol):
        return True
    for dep in check.dependencies:
        if dep.path is None:
            continue
        try:
            if read_elf(dep.path).exports(symbol):
                return True
        except ElfReadError:
            continue
    return False


#: Roles whose library is a TVM runtime of one generation or the other.
TVM_ROLES = ("tvm_runtime", "tvm_compiler", "tvm")


def probe_file(
    path: str,
    role: str | None = None,
    preloaded: dict[str, str] | None = None,
    tvm_version: str | None = None,
) -> StaticFacts:
    """Static facts for `path`; raises ElfReadError if the file is not a readable ELF file."""
    info = read_elf(path)
    role = role or role_of(path, info)
    required, optional = SYMBOL_SETS.get(role, ((), ()))
    check = check_load(path, preloaded=preloaded)
    problems, remedies = _remedies(check, tvm_version)
    generation = None
    if role in TVM_ROLES:
        generation = requirements.tvm_generation(info.exports("TVMFuncCall"), list(info.needed))
        if generation == requirements.PACKED_FUNC_GENERATION:
            required = requirements.TVM_PACKED_FUNC_REQUIRED_SYMBOLS
            optional = requirements.TVM_PACKED_FUNC_OPTIONAL_SYMBOLS
    missing_required = [s for s in required if not info.exports(s)]
    if missing_required:
        problems.append(f"required symbols not exported: {', '.join(missing_required)}")
        remedies.append(
            f"install a {role} build that exports them (MXNet >= {requirements.MIN_MXNET_VERSION})"
            if role == "mxnet"
            else f"install a {role} build that exports them"
        )
    return StaticFacts(
        soname=info.soname,
        compiler=compiler_of(info.comments),
        string_abi=string_abi_of(info),
        cxx11_symbols=info.cxx11_symbols,
        cpp_symbols=info.cpp_symbols,
        needed=list(info.needed),
        rpath=list(info.rpath),
        runpath=list(info.runpath),
        needs_newest=newest_versions(needed_versions(info)),
        system_provides_newest=_system_provides(check),
        required_symbols_missing=missing_required,
        optional_symbols_missing=[s for s in optional if not info.exports(s)],
        exports_legacy_bridge=info.exports(requirements.LEGACY_BRIDGE_SYMBOL),
        throw_symbol_in_tree=_tree_exports(check, info, requirements.ENGINE_THROW_SYMBOL),
        loadable=check.loadable,
        dependencies=[asdict(d) for d in check.dependencies],
        missing_libraries=[d.soname for d in check.missing_libraries],
        missing_symbols=[asdict(s) for s in check.missing_symbols],
        missing_versions=[asdict(v) for v in check.missing_versions],
        problems=problems,
        remedies=remedies,
        read_from=info.read_from,
        read_notes=list(info.read_notes),
        tvm_generation=generation,
    )
