"""Probes of training: bad bytes, cut archives, refused settings, a folder in use."""

from __future__ import annotations

import time
from pathlib import Path

from ids_lightning.training.config import QUIET, compose
from tools.chaos.lab import (
    BOT_IOT,
    NSL_TRAIN,
    Lab,
    Probe,
    _gz_root,
    train_counts,
)


def train_probes(lab: Lab) -> list[Probe]:
    from ids_lightning.launch import launch
    from ids_lightning.training.folder import run_lock

    def data_root(train_bytes: bytes) -> Path:
        root = lab.root / "data" / str(time.perf_counter_ns())
        (root / "nsl_kdd").mkdir(parents=True)
        (root / "nsl_kdd" / "KDDTrain+.txt").write_bytes(train_bytes)
        return root

    def run(root: Path, records: int, *overrides: str) -> dict:
        folder = lab.root / "train" / str(time.perf_counter_ns())
        base = [*QUIET, "model=cnn", "debug=fast_dev_run", "export=none", "dataset.split=random"]
        metrics = launch(compose([*base, "dataset.download=false", *overrides], folder, data_dir=root))
        return train_counts(metrics, records)

    rows = lambda: "".join(lab.lines(NSL_TRAIN, 400))  # noqa: E731 - a probe's material
    bad_byte = lambda: rows().encode()[:30000] + b"\xff" + rows().encode()[30000:]  # noqa: E731
    long_line = lambda: rows().replace("\n", "\n" + "q" * 1_200_000 + "\n", 1)  # noqa: E731

    def locked(_):
        folder = lab.root / "locked"
        with run_lock(folder):
            launch(compose([*QUIET, "debug=fast_dev_run"], folder, data_dir=lab.data))

    def tab_separated_bot_iot(_):
        root = lab.root / "data" / "bot_tab"
        (root / "bot_iot").mkdir(parents=True, exist_ok=True)
        everything = lab.lines(BOT_IOT, 4001)
        lines = [everything[0], *everything[1:4001:10]]  # 400 rows of all three classes
        tabbed = "".join(x.rstrip("\r\n").replace(",", "\t") + "\r\n" for x in lines)
        (root / "bot_iot" / "sample.csv").write_text(tabbed)
        folder = lab.root / "train" / "bot_tab"
        base = [*QUIET, "model=cnn", "debug=fast_dev_run", "export=none"]
        metrics = launch(
            compose([*base, "dataset=bot_iot", "dataset.files=[bot_iot/sample.csv]"], folder, data_dir=root)
        )
        return train_counts(metrics, 400)

    def probe(name, action, refuse):
        return Probe(f"train: {name}", "train", action, refuse, fast=False)

    return [
        probe("clean rows", lambda _: run(data_root(rows().encode()), 400), False),
        probe("byte-order mark", lambda _: run(data_root(b"\xef\xbb\xbf" + rows().encode()), 400), False),
        probe("invalid UTF-8, bad_rows=error", lambda _: run(data_root(bad_byte()), 400), True),
        probe(
            "invalid UTF-8, bad_rows=skip", lambda _: run(data_root(bad_byte()), 400, "dataset.bad_rows=skip"), False
        ),
        probe(
            "1.2 MB line, bad_rows=skip",
            lambda _: run(data_root(long_line().encode()), 401, "dataset.bad_rows=skip"),
            False,
        ),
        probe("truncated gzip", lambda _: run(_gz_root(lab, rows()), 400), True),
        probe("empty training file", lambda _: run(data_root(b""), 0), True),
        probe("tab-separated BoT-IoT .csv with CRLF", tab_separated_bot_iot, False),
        probe(
            "trainer.max_epochs=0",
            lambda _: run(data_root(rows().encode()), 400, "trainer.max_epochs=0", "trainer.fast_dev_run=false"),
            True,
        ),
        probe(
            "dataset.val_fraction=1.5", lambda _: run(data_root(rows().encode()), 400, "dataset.val_fraction=1.5"), True
        ),
        probe(
            "optimized_metric=test/acc",
            lambda _: run(data_root(rows().encode()), 400, "optimized_metric=test/acc"),
            True,
        ),
        probe("dataset.task typo", lambda _: run(data_root(rows().encode()), 400, "dataset.task=familly"), True),
        probe("no data files", lambda _: run(lab.root / "nowhere", 0), True),
        probe("run folder in use", locked, True),
        probe(
            "unknown BoT-IoT read option",
            lambda _: launch(
                compose(
                    [*QUIET, "dataset=bot_iot", "+dataset.read_options.layuot=x"], lab.root / "t-opt", data_dir=lab.data
                )
            ),
            True,
        ),
    ]
