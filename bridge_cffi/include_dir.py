"""Where the protocol header lives, for people compiling C kernels against it."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def get_include() -> str:
    """The directory to pass as ``-I`` so that ``#include <bridge_cffi/protocol.h>`` works.

    Installed packages carry the header in ``bridge_cffi/include`` (copied there by the
    build); an editable install or a checkout uses the source tree's ``csrc/include``.
    """
    for candidate in (_PACKAGE / "include", _PACKAGE.parent / "csrc" / "include"):
        if (candidate / "bridge_cffi" / "protocol.h").is_file():
            return str(candidate)
    raise FileNotFoundError(
        f"bridge_cffi/protocol.h is neither in {_PACKAGE / 'include'} nor in the source tree; "
        "reinstall bridge_cffi"
    )
