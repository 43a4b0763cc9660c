"""``MxnetFunc``: what :func:`~bridge_cffi.mxnet.wrap.to_mxnet_func` returns, as one type.

Compiled code becomes a :class:`~bridge_cffi.mxnet.function.BridgedFunction`, un-built TVM code
an :class:`~bridge_cffi.unbuilt_tvm.front_end.InferredFunction`, which composes one. The second
is registered as a virtual subclass of the first for ``isinstance``, which type checkers do not
follow; this Protocol names the interface both offer, so a caller of ``to_mxnet_func`` is
checked against what it may really use. Both match it structurally (mypy checks that where
``to_mxnet_func`` returns either), so neither class changes at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from bridge_cffi.foreign_types import Outputs

if TYPE_CHECKING:
    from bridge_cffi.producers.kernel import Kernel


class MxnetFunc(Protocol):
    """A function whose every call pushes one asynchronous MXNet engine operation."""

    @property
    def name(self) -> str:
        """The operation's name in MXNet's profiler."""

    @property
    def const_loc(self) -> frozenset[int]:
        """Positions of arguments that are only read."""

    @property
    def arity(self) -> int | None:
        """Number of arguments of a call with every argument, or None when unknown."""

    @property
    def kernel(self) -> Kernel:
        """The protocol kernel each call runs."""

    def __call__(self, *args: object) -> Outputs:
        """Push one operation. Returns ``None`` for compiled code; un-built TVM code called
        without its outputs allocates them and returns them (one array, or a tuple).
        """
