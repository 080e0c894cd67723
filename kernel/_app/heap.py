"""Give the C heap's free pages back to the system once the kernel has started.

Start-up (imports, building IPython's shell, parsing configuration) frees much of what it
allocates, but glibc keeps freed pages in the process unless they sit at the top of the
heap; about half a MiB of a fresh kernel's resident memory is such free space.
``malloc_trim(0)`` returns it (it takes about 0.1 ms). Called once by the standalone
kernel, on the main thread, after the shell is built; elsewhere than glibc (no
``malloc_trim``) it does nothing.
"""

from __future__ import annotations

import ctypes


def release_free_memory() -> bool:
    """Return the C heap's free pages to the system; False where that is not possible."""
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc, or no C library to open
        return False
    malloc_trim(0)
    return True
