"""``python -m ids_lightning.detect``: the streaming detector (see :mod:`ids_lightning.edge.detect`)."""

from ids_lightning.edge.detect import main

if __name__ == "__main__":
    main()
