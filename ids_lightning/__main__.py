"""``python -m ids_lightning <command> [options]``: the ``ids`` command without its script."""

import sys

from ids_lightning.cli import main

if __name__ == "__main__":
    sys.exit(main())
