"""Probes of ``ids train``: bad bytes, cut archives, refused settings (before the data loads),
one-class and mislabelled files, a folder in use, and finished or killed runs re-run under
another config. Each trains for real (``debug=fast_dev_run``), so they are the slow tier."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from ids_lightning.training.config import QUIET
from tools.chaos.lab import BOT_IOT, NSL_TRAIN, ZEEK_OTHER, Call, Probe, Workspace, reordered, train_counts

BASE = [*QUIET, "model=cnn", "debug=fast_dev_run", "export=none", "dataset.split=random", "dataset.download=false"]


def train(ws: Workspace, root: Path, records: int, *overrides: str, run: Path | None = None, **call) -> Call:
    """``ids train`` on the data root ``root`` into the probe's folder (or ``run``)."""
    run = run or ws.folder / "run"
    argv = ["train", *BASE, f"paths.data_dir={root}", f"hydra.run.dir={run}", *overrides]
    return Call(argv, records, count=train_counts(run), **call)


def nsl_root(ws: Workspace, data: bytes, name: str = "KDDTrain+.txt") -> Path:
    (ws.folder / "data" / "nsl_kdd").mkdir(parents=True)
    (ws.folder / "data" / "nsl_kdd" / name).write_bytes(data)
    return ws.folder / "data"


def rows(ws: Workspace, count: int = 400) -> bytes:
    return "".join(ws.lab.lines(NSL_TRAIN, count)).encode()


def train_probes() -> list[Probe]:
    def probe(name: str, make: Callable[[Workspace], Call], refuse: bool) -> Probe:
        return Probe(f"train: {name}", "train", make, refuse, fast=False)

    def on_rows(damage: Callable[[bytes], bytes], records: int, *overrides: str, names=("KDDTrain+.txt",)):
        return lambda ws: train(ws, nsl_root(ws, damage(rows(ws))), records, *overrides, names=names)

    def setting(*overrides: str, names: tuple[str, ...]):
        return lambda ws: train(ws, nsl_root(ws, rows(ws)), 400, *overrides, names=names)

    bad_byte = lambda data: data[:30000] + b"\xff" + data[30000:]  # noqa: E731 - a probe's material
    long_line = lambda data: data.replace(b"\n", b"\n" + b"q" * 1_200_000 + b"\n", 1)  # noqa: E731
    lone_cr = lambda data: data.replace(b",tcp,", b",t\rcp,", 1)  # noqa: E731
    one_class = lambda data: b"".join(x + b"\n" for x in data.splitlines() if b",normal," in x)  # noqa: E731

    def truncated(ws: Workspace) -> Call:
        root = nsl_root(ws, gzip.compress(rows(ws))[:-300], "KDDTrain+.txt.gz")
        return train(ws, root, 400, names=("KDDTrain+.txt.gz",))

    def locked(ws: Workspace) -> Call:
        """The run folder held by another process (a training in progress)."""
        run = ws.folder / "run"
        return train(ws, ws.lab.data, 0, run=run, names=("in use", str(run)), hold=lambda: _holding(run))

    def bot_iot(damage: Callable[[list[str]], list[str]], records: int, *overrides: str):
        def make(ws: Workspace) -> Call:
            everything = ws.lab.lines(BOT_IOT, 4001)
            lines = damage([everything[0], *everything[1:4001:10]])  # 400 rows of all three classes
            (ws.folder / "data" / "bot_iot").mkdir(parents=True)
            (ws.folder / "data" / "bot_iot" / "sample.csv").write_text("".join(lines))
            spec = ["dataset=bot_iot", "dataset.files=[bot_iot/sample.csv]", *overrides]
            return train(ws, ws.folder / "data", records, *spec, verify=_one_dos_class(ws.folder / "run"))

        return make

    def joined_zeek(ws: Workspace) -> Call:
        """Two captures joined, the second in another column order: training reads both."""
        header, first = ws.lab.zeek(1500)
        other_header, second = ws.lab.zeek(1500, ZEEK_OTHER)
        (ws.folder / "data" / "iot23").mkdir(parents=True)
        text = "".join(header + first + ["#close\t2019\n"] + reordered(other_header + second))
        (ws.folder / "data" / "iot23" / "joined.conn.log.labeled").write_text(text)
        spec = ["dataset=iot23", "dataset.files=[iot23/joined.conn.log.labeled]"]
        return train(ws, ws.folder / "data", 3000, *spec)

    def finished(change: list[str], unfinish: bool, names: tuple[str, ...]):
        """A run trained to the end (in the guarded folder, which nothing may change), re-run
        with ``change``; ``unfinish`` removes its metrics.json first, as a kill would."""

        def make(ws: Workspace) -> Call:
            root = nsl_root(ws, rows(ws))
            first = train(ws, root, 400, run=ws.guarded / "run")
            command = [sys.executable, "-m", "ids_lightning", *map(str, first.argv)]
            subprocess.run(command, cwd=ws.folder, check=True, capture_output=True, env=ws.lab.env())
            if unfinish:
                (ws.guarded / "run" / "metrics.json").unlink()
            return train(ws, root, 400, *change, run=ws.guarded / "run", names=names)

        return make

    return [
        probe("clean rows", on_rows(lambda d: d, 400), False),
        probe("byte-order mark", on_rows(lambda d: b"\xef\xbb\xbf" + d, 400), False),
        probe("invalid UTF-8, bad_rows=error", on_rows(bad_byte, 400, names=("KDDTrain+.txt:",)), True),
        probe("invalid UTF-8, bad_rows=skip", on_rows(bad_byte, 400, "dataset.bad_rows=skip"), False),
        probe("1.2 MB line, bad_rows=skip", on_rows(long_line, 401, "dataset.bad_rows=skip"), False),
        probe("a lone carriage return, bad_rows=skip", on_rows(lone_cr, 400, "dataset.bad_rows=skip"), False),
        probe("truncated gzip", truncated, True),
        probe("empty training file", on_rows(lambda d: b"", 0), True),
        probe("one class only", on_rows(one_class, 0, names=("normal", "one class")), True),
        probe(
            "tab-separated BoT-IoT .csv with CRLF",
            bot_iot(lambda ls: [x.rstrip("\r\n").replace(",", "\t") + "\r\n" for x in ls], 400),
            False,
        ),
        probe(
            "BoT-IoT labels DoS, DOS and dos",
            bot_iot(lambda ls: [ls[0], *(x.replace(",DoS,", ",DOS,", i % 2) for i, x in enumerate(ls[1:]))], 400),
            False,
        ),
        probe(
            "BoT-IoT with a stray quote, bad_rows=skip",
            bot_iot(lambda ls: [*ls[:50], '"' + ls[50], *ls[51:]], 400, "dataset.bad_rows=skip"),
            False,
        ),
        probe("two IoT-23 captures joined, columns reordered", joined_zeek, False),
        probe(
            "trainer.max_epochs=0",
            setting("trainer.max_epochs=0", "trainer.fast_dev_run=false", names=("max_epochs",)),
            True,
        ),
        probe("dataset.val_fraction=1.5", setting("dataset.val_fraction=1.5", names=("val_fraction",)), True),
        probe("dataset.batch_size=0", setting("dataset.batch_size=0", names=("batch_size",)), True),
        probe("model.optimizer.lr=nan", setting("model.optimizer.lr=nan", names=("lr",)), True),
        probe("dataset.window=100000", setting("dataset.window=100000", names=("window",)), True),
        probe("dataset.window=4097", setting("dataset.window=4097", names=("window",)), True),
        probe("optimized_metric=test/acc", setting("optimized_metric=test/acc", names=("optimized_metric",)), True),
        probe("dataset.task typo", setting("dataset.task=familly", names=("task",)), True),
        probe(
            "unknown BoT-IoT read option",
            setting("dataset=bot_iot", "+dataset.read_options.layuot=x", names=("layuot",)),
            True,
        ),
        probe(
            "a _target_ in read options",
            setting("dataset=bot_iot", "+dataset.read_options.x._target_=os.system", names=("read_options",)),
            True,
        ),
        probe("no data files", lambda ws: train(ws, ws.folder / "nowhere", 0, names=("nowhere",)), True),
        probe("run folder in use", locked, True),
        probe("a finished run re-run with another model", finished(["model=lstm"], False, ("model",)), True),
        probe(
            "a killed run resumed with another learning rate", finished(["model.optimizer.lr=0.5"], True, ("lr",)), True
        ),
    ]


@contextmanager
def _holding(run: Path):
    """The run folder's lock, held by this process while the probe's command runs."""
    from ids_lightning.training.folder import run_lock

    with run_lock(run):
        yield


def _one_dos_class(run: Path) -> Callable[[], str | None]:
    def verify() -> str | None:
        classes = json.loads((run / "metrics.json").read_text())["class_counts"]["train"]
        spellings = [name for name in classes if name.lower() == "dos"]
        return None if len(spellings) <= 1 else f"the spellings of one label became classes {spellings}"

    return verify
