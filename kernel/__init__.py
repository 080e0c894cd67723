"""trio-kernel: a trio-first, structured-concurrency Jupyter kernel for Python.

Public API: ``open_kernel`` (embed a kernel in a running trio program), ``Kernel`` (the
handle it yields), ``RunMode`` and ``route`` (the run-mode table). The heavy names are
imported on first use, so that ``python -m kernel`` can bind its sockets before trio and
IPython are loaded.
"""

from typing import Any

from ._enums import Channel, RunMode

__version__ = "0.1.0"

_LAZY = {"Kernel": "_kernel", "open_kernel": "_kernel", "Route": "_routing", "route": "_routing"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kernel' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = ["Channel", "Kernel", "Route", "RunMode", "__version__", "open_kernel", "route"]
