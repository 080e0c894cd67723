"""``python -m kernel``: run a kernel or manage its kernelspec (see ``_cli``).

The kernelspec starts ``python -P -m kernel``: without ``-P`` the notebook's directory comes
first on ``sys.path``, and a folder named ``kernel`` there (a common name) would be imported
instead of this package. Once this package is loaded, that directory is put back first, as
``python -m`` puts it, so cells import the notebook's own modules as under ipykernel.
"""

import os
import sys

from ._app.cli import main

if sys.flags.safe_path:
    sys.path.insert(0, os.getcwd())
sys.exit(main())
