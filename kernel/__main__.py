"""``python -m kernel``: run a kernel or manage its kernelspec (see ``_cli``)."""

import sys

from ._app.cli import main

sys.exit(main())
