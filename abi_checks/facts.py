"""The facts the probe collects. Verdicts are computed from these alone, so tests can build them.

Every class converts to JSON through `dataclasses.asdict`; field names are the JSON keys
documented in SCHEMA.md, so renaming a field is a schema change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


@dataclass
class LibraryCopy:
    """One file found where some loader would look for a library."""

    path: str
    realpath: str
    sources: list[str]  # e.g. "package", "MXNET_LIBRARY_PATH", "LD_LIBRARY_PATH", "ldconfig"
    same_file_as: str | None = None  # an earlier listed copy that is the same inode
    predicted: bool = False  # the copy the package's own lookup code would pick
    mapped: bool = False  # the copy a child process actually mapped after importing


@dataclass
class Compiler:
    """Compiler identified from `.comment` (the newest GCC, or clang if present)."""

    family: str | None  # "gcc", "clang" or None
    version: str | None
    strings: list[str] = field(default_factory=list)


@dataclass
class StaticFacts:
    """What the ELF file says about itself and its loadability (never executed)."""

    soname: str | None
    compiler: Compiler
    string_abi: str  # "cxx11", "old", or "none" (no C++ symbols)
    cxx11_symbols: int
    cpp_symbols: int
    needed: list[str]
    rpath: list[str]
    runpath: list[str]
    needs_newest: dict[str, str]  # family -> newest GLIBC_/GLIBCXX_/CXXABI_ version needed
    system_provides_newest: dict[str, str]  # same families, from the resolved libc/libstdc++
    required_symbols_missing: list[str]
    optional_symbols_missing: list[str]
    exports_legacy_bridge: bool
    throw_symbol_in_tree: bool  # the engine throw symbol is exported somewhere in the load tree
    loadable: bool
    dependencies: list[dict[str, Any]]
    missing_libraries: list[str]
    missing_symbols: list[dict[str, Any]]
    missing_versions: list[dict[str, Any]]
    problems: list[str]
    remedies: list[str]
    #: "sections", or "program-headers" when the section header table was unusable and the
    #: dynamic segment was read instead (compiler then unknown)
    read_from: str = "sections"
    read_notes: list[str] = field(default_factory=list)  # why, and what that left unknown
    #: TVM libraries: "packed-func" (TVM < 0.20, TVMFuncCall) or "tvm-ffi" (links libtvm_ffi)
    tvm_generation: str | None = None


@dataclass
class LibraryFacts:
    """One logical library (role) with every copy found and the static facts of the chosen one."""

    role: str  # mxnet, tvm_ffi, tvm_runtime, tvm_compiler, tvm, bridge_extension, file
    name: str  # file name, e.g. libmxnet.so
    path: str | None  # the copy analysed: the mapped one if known, else the predicted one
    package_version: str | None = None
    copies: list[LibraryCopy] = field(default_factory=list)
    static: StaticFacts | None = None
    error: str | None = None


@dataclass
class SelfTest:
    """Outcome of one self-test: ok None means it could not run (see detail)."""

    ok: bool | None
    detail: str


@dataclass
class GpuCheck:
    """The bridge's GPU stream self-test: status confirmed / not confirmed / no GPU / not run."""

    status: str
    detail: str


@dataclass
class DynamicFacts:
    """What a child process saw after importing the libraries (DESIGN §6, dynamic layer)."""

    ran: bool
    error: str | None = None  # crash, timeout or unreadable output of the child
    stages_completed: list[str] = field(default_factory=list)
    mxnet_version: str | None = None
    mxnet_version_code: int | None = None
    mxnet_lib_path: str | None = None
    mxnet_error: str | None = None
    mxnet_features: dict[str, bool] = field(default_factory=dict)
    tvm_version: str | None = None
    tvm_error: str | None = None
    tvm_ffi_version: str | None = None
    tvm_ffi_error: str | None = None
    dlpack_layout: SelfTest = field(default_factory=lambda: SelfTest(None, "not run"))
    view_identity: SelfTest = field(default_factory=lambda: SelfTest(None, "not run"))
    throw_symbol: SelfTest = field(default_factory=lambda: SelfTest(None, "not run"))
    bridge_available: bool = False
    bridge_detail: str = "not run"
    #: bridge_cffi and its compiled extension are installed but importing it failed
    bridge_import_error: str | None = None
    bridge_run_context_layout: SelfTest = field(default_factory=lambda: SelfTest(None, "not run"))
    bridge_view_identity: SelfTest = field(default_factory=lambda: SelfTest(None, "not run"))
    bridge_error_mode: str | None = None
    #: gpu(0)'s stream self-test (bridge_cffi.mxnet.selftests.gpu_stream_layout): GPU arrays are
    #: accepted only when it is "confirmed"
    gpu: GpuCheck = field(default_factory=lambda: GpuCheck("not run", "not run"))
    mapped_libraries: list[str] = field(default_factory=list)
    #: MXNet's own MXTVMBridge tried with this TVM in a process of its own (PackedFunc
    #: generation only): "right answers", "crashes (signal 11)", "wrong answers", "fails: ..."
    legacy_bridge_trial: str | None = None


@dataclass
class Verdict:
    """Whether one way of running TVM functions on MXNet works here, and why."""

    name: str  # bridge-async, bridge-recorded-errors, legacy-mxtvmbridge, bridge-operators
    status: str  # ok, degraded, unavailable, unsafe
    reasons: list[str]
    remedy: list[str]


@dataclass
class Facts:
    """Everything collected in one run: the only input of the verdicts."""

    libraries: dict[str, LibraryFacts] = field(default_factory=dict)
    dynamic: DynamicFacts | None = None
    system: dict[str, str | None] = field(default_factory=dict)

    def tvm_library(self) -> LibraryFacts | None:
        """The TVM runtime library found: libtvm_runtime.so, else libtvm.so (with static facts)."""
        for role in ("tvm_runtime", "tvm"):
            library = self.libraries.get(role)
            if library is not None and library.static is not None:
                return library
        return None

    def tvm_generation(self) -> str | None:
        """``packed-func`` or ``tvm-ffi`` for the TVM runtime found, else None."""
        library = self.tvm_library()
        return library.static.tvm_generation if library and library.static else None


def to_jsonable(obj: DataclassInstance) -> dict[str, Any]:
    """Dataclasses to plain dicts (JSON-ready)."""
    return asdict(obj)
