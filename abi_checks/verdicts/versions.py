"""The MXNet and TVM versions the rules judge, read from Facts (the child's answer first)."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from abi_checks import requirements
from abi_checks.facts import Facts


def mxnet_version(facts: Facts) -> Version | None:
    """MXNet's version: MXGetVersion from the child if it ran, else the package metadata."""
    dyn = facts.dynamic
    if dyn and dyn.mxnet_version_code:
        return requirements.decode_mxnet_version(dyn.mxnet_version_code)
    lib = facts.libraries.get("mxnet")
    return parse_version(lib.package_version if lib else None)


def tvm_version(facts: Facts) -> Version | None:
    """TVM's version: what `import tvm` reported, else the package metadata."""
    if facts.dynamic and facts.dynamic.tvm_version:
        return parse_version(facts.dynamic.tvm_version)
    for role in ("tvm_runtime", "tvm"):
        lib = facts.libraries.get(role)
        if lib and lib.package_version:
            return parse_version(lib.package_version)
    return None


def parse_version(text: str | None) -> Version | None:
    """`text` as a PEP 440 version; None when it is missing or not a version."""
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None
