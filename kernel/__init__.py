"""trio-kernel: a trio-first, structured-concurrency Jupyter kernel for Python.

Public API: ``open_kernel`` (embed a kernel in a running trio program), ``Kernel`` (the
handle it yields), ``RunMode`` and ``route`` (the run-mode table).
"""

__version__ = "0.1.0"

from ._enums import Channel, RunMode
from ._kernel import Kernel, open_kernel
from ._routing import Route, route

__all__ = ["Channel", "Kernel", "Route", "RunMode", "__version__", "open_kernel", "route"]
