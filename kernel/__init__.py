"""trio-kernel: a trio-first, structured-concurrency Jupyter kernel for Python.

Public API: ``open_kernel`` (embed a kernel in a running trio program), ``Kernel`` (the
handle it yields), ``RunMode``, ``route`` and ``run_mode_table`` (the run-mode table). The heavy names are
imported on first use, so that ``python -m kernel`` can bind its sockets before trio and
IPython are loaded.
"""

from typing import Any

from ._core.enums import Channel, RunMode

__version__ = "0.1.0"

_LAZY = {
    "Kernel": ("_app.kernel", "Kernel"),
    "open_kernel": ("_app.kernel", "open_kernel"),
    "Route": ("_core.routing", "Route"),
    "route": ("_core.routing", "route"),
    "run_mode_table": ("_core.routing", "table"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'kernel' has no attribute {name!r}")
    import importlib

    module, attribute = _LAZY[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)


__all__ = ["Channel", "Kernel", "Route", "RunMode", "__version__", "open_kernel", "route", "run_mode_table"]
