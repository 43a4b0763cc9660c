"""The package's lazily loaded public names (bridge_cffi/__init__.py, PEP 562) are never
shadowed by a sub-module of the same name: importing ``bridge_cffi.<x>`` binds the module
as the package's attribute ``x`` and ``__getattr__`` is then never asked for it, so a module
named like a public function would replace the function (as ``bridge_cffi.direct`` did).
"""

from __future__ import annotations

import importlib
import pkgutil

import bridge_cffi


def test_no_sub_module_is_named_like_a_public_name() -> None:
    modules = {info.name for info in pkgutil.iter_modules(bridge_cffi.__path__)}
    assert not modules & set(bridge_cffi.__all__), modules & set(bridge_cffi.__all__)


def test_direct_is_the_function_after_every_sub_module_was_imported() -> None:
    for info in pkgutil.iter_modules(bridge_cffi.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"bridge_cffi.{info.name}")
    from bridge_cffi.direct_consumer import direct

    assert bridge_cffi.direct is direct
