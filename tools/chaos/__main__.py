"""``python -m tools.chaos``: the fault suite."""

import sys

from tools.chaos.suite import main

if __name__ == "__main__":
    sys.exit(main())
