"""Train a detector: ``python train.py model=cnn_lstm dataset=nsl_kdd`` (see conf/train.yaml)."""

from ids_lightning.train import main

if __name__ == "__main__":
    main()
