"""``python -m tools.chaos``: the fault suite."""

from tools.chaos.suite import main

if __name__ == "__main__":
    main()
