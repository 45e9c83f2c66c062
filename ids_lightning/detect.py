"""``python -m ids_lightning.detect``: the streaming detector (see :mod:`ids_lightning.edge.detector`)."""

from ids_lightning.edge.detector import main

if __name__ == "__main__":
    main()
