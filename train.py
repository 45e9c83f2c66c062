"""Train a detector: ``python train.py model=cnn_lstm dataset=nsl_kdd`` (see ids_lightning/conf/train.yaml)."""

import sys

from ids_lightning.cli.train import main
from ids_lightning.core.errors import exit_status

if __name__ == "__main__":
    sys.exit(exit_status(main))
