"""``python -m ids_lightning <command> [options]``: the ``ids`` command without its script."""

import sys

from ids_lightning.cli import main

sys.exit(main())
