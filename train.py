"""Train a detector: ``python train.py model=cnn_lstm dataset=nsl_kdd`` (see ids_lightning/conf/train.yaml)."""

import sys

from ids_lightning.cli import run
from ids_lightning.cli.train import main

if __name__ == "__main__":
    sys.exit(run(main))
