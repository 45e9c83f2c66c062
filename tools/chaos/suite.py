"""The fault suite: corrupt inputs, hostile run folders and bad settings against every tool.

``python -m tools.chaos`` (``make chaos``) builds each probe in a temporary folder,
runs train, detect, prepare, export, attack or report against it, and classifies what happened:

- ``clear_error``: one of the project's own errors (a data, config or run-folder error, or a
  command's usage error) that names what is wrong;
- ``counted_skip``: it ran, and every input row was either used or counted as skipped;
- ``ok``: it ran and used every row;
- ``traceback``: any other exception;
- ``silent_loss``: it ran, but rows went missing, or it accepted what it had to refuse;
- ``code_execution``: a file that hostile input tries to create exists.

Writes ``outputs/bench/chaos.json`` (one row per probe: probe, tool, outcome, rows_in, rows_out,
rows_skipped, detail; and the counts per outcome) and prints the table. ``--fast`` runs the
probes that need no training (the test suite runs them).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.training.config import PROJECT_ROOT, QUIET, compose

OUTCOMES = ("clear_error", "counted_skip", "ok", "traceback", "silent_loss", "code_execution")
CLEAR = (DataError, ConfigError)
NSL_TEST = "nsl_kdd/KDDTest+.txt.gz"
NSL_TRAIN = "nsl_kdd/KDDTrain+.txt.gz"
ZEEK = "iot23/CTU-IoT-Malware-Capture-42-1.conn.log.labeled.gz"
IOT23_CSV = "iot23/csv_exports/CTU-IoT-Malware-Capture-44-1.labeled.csv.gz"
BOT_IOT = "bot_iot/bot_iot_reducedfeatures_normal_dos_recon_sample.csv.gz"


@dataclass
class Probe:
    name: str
    tool: str
    action: Callable[[Path], dict | None]  # returns {rows_in, rows_out, rows_skipped} when it ran
    refuse: bool  # the right answer is a clear error
    fast: bool = True  # needs no training


class Lab:
    """The shared material of the probes: real rows, and run folders built without training."""

    def __init__(self, root: Path, data_dir: Path):
        self.root, self.data = root, data_dir
        self.sentinel = root / "pwned"
        self._runs: dict[str, Path] = {}

    def lines(self, relative: str, count: int) -> list[str]:
        """The first ``count`` data lines of a real file (Zeek/CSV headers kept apart)."""
        with gzip.open(self.data / relative, "rt", encoding="utf-8", newline="") as handle:
            return [next(handle) for _ in range(count)]

    def file(self, name: str, data: bytes | str) -> Path:
        path = self.root / "inputs" / f"{time.perf_counter_ns()}" / name
        path.parent.mkdir(parents=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def run(self, dataset: str, **dataset_overrides) -> Path:
        """A run folder (config.yaml, preprocess.json, checkpoint, model.onnx) of an untrained
        net: what the detector, export and attack read, in seconds."""
        if dataset in self._runs:
            return self._runs[dataset]
        import torch

        from ids_lightning.training.export import ProbabilityHead, export_onnx
        from ids_lightning.training.run_folder import build_datamodule, build_net

        folder = self.root / "runs" / dataset
        cfg = compose([f"dataset={dataset}", "model=lstm", *QUIET], folder, data_dir=self.data)
        config = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
        config["dataset"].update(dataset_overrides)
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        dm = build_datamodule(config, folder / "config.yaml", self.data)
        dm.setup()
        dm.preprocessor.save(folder / "preprocess.json")
        torch.manual_seed(0)
        net = build_net(config, folder, dm.preprocessor).eval()
        (folder / "checkpoints").mkdir()
        state = {f"net.{k}": v for k, v in net.state_dict().items()}
        torch.save({"state_dict": state}, folder / "checkpoints" / "epoch_000.ckpt")
        export_onnx(
            ProbabilityHead(net, dm.num_classes == 2).eval(),
            dm.preprocessor.input_shape,
            folder / "model.onnx",
            dm.class_names,
        )
        self._runs[dataset] = folder
        return folder

    def copy_run(self, dataset: str, change: Callable[[Path], None]) -> Path:
        source = self.run(dataset)
        target = self.root / "runs" / f"{dataset}-{time.perf_counter_ns()}"
        for path in source.rglob("*"):
            if path.is_file():
                (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                (target / path.relative_to(source)).write_bytes(path.read_bytes())
        change(target)
        return target


def classify(probe: Probe, lab: Lab) -> dict:
    lab.sentinel.unlink(missing_ok=True)
    row = {"probe": probe.name, "tool": probe.tool, "rows_in": 0, "rows_out": 0, "rows_skipped": 0, "detail": ""}
    try:
        counts = probe.action(lab.root) or {}
        row |= counts
        lost = row["rows_in"] != row["rows_out"] + row["rows_skipped"]
        if probe.refuse or lost:
            row["outcome"] = "silent_loss"
            row["detail"] = "accepted what it had to refuse" if probe.refuse else "rows went missing"
        else:
            row["outcome"] = "counted_skip" if row["rows_skipped"] else "ok"
    except SystemExit as err:
        row["outcome"] = "clear_error" if err.code not in (0, None) else "silent_loss"
        row["detail"] = f"exit {err.code}"
    except CLEAR as err:
        row["outcome"] = "clear_error"
        row["detail"] = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
    except Exception as err:
        row["outcome"] = "traceback"
        row["detail"] = f"{type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}"
    if lab.sentinel.exists():
        row["outcome"], row["detail"] = "code_execution", "the hostile input ran code"
    if not probe.refuse and row["outcome"] == "clear_error":
        row["detail"] = "refused a valid input: " + row["detail"]
        row["outcome"] = "silent_loss"
    row["detail"] = row["detail"].replace(str(lab.root), "<tmp>")
    return row


# --- probes ------------------------------------------------------------------------------------
def probes(lab: Lab) -> list[Probe]:
    return [
        *detector_probes(lab),
        *prepare_probes(lab),
        *hostile_folder_probes(lab),
        *report_probes(lab),
        *train_probes(lab),
    ]


def detect_counts(lab: Lab, dataset: str, path: Path, records: int) -> dict:
    from ids_lightning.edge.detector import detect

    alerts = path.with_suffix(".jsonl")
    summary = detect(lab.run(dataset), path, alerts, progress=False)
    if "error" in summary:
        raise DataError(summary["error"])
    with open(alerts, encoding="utf-8") as handle:
        written = sum(1 for line in handle if json.loads(line))  # every line valid JSON
    return {"rows_in": records, "rows_out": written, "rows_skipped": summary["skipped"]}


def detector_probes(lab: Lab) -> list[Probe]:
    def nsl(name: str, build: Callable[[list[str]], tuple[bytes | str, int]], refuse=False) -> Probe:
        def action(_):
            data, records = build(lab.lines(NSL_TEST, 200))
            return detect_counts(lab, "nsl_kdd", lab.file(f"{name}.txt", data), records)

        return Probe(f"nsl_kdd: {name}", "detect", action, refuse)

    def zeek(name: str, build: Callable[[list[str], list[str]], tuple[bytes | str, int]], refuse=False) -> Probe:
        def action(_):
            lines = lab.lines(ZEEK, 308)
            header = [line for line in lines if line.startswith("#")]
            rows = [line for line in lines if not line.startswith("#")][:300]
            data, records = build(header, rows)
            return detect_counts(lab, "iot23", lab.file(f"{name}.conn.log.labeled", data), records)

        return Probe(f"iot23 zeek: {name}", "detect", action, refuse)

    def csv_probe(name: str, source: str, dataset: str, build: Callable[[str, list[str]], tuple[bytes | str, int]]):
        def action(_):
            lines = lab.lines(source, 201)
            data, records = build(lines[0], lines[1:])
            return detect_counts(lab, dataset, lab.file(f"{name}.csv", data), records)

        return Probe(f"{dataset} csv: {name}", "detect", action, False)

    def with_line(lines, index, line):
        return [*lines[:index], line, *lines[index:]]

    def refuse_setting(name: str, call: Callable[[Path, Path], object]) -> Probe:
        def action(_):
            source = lab.file("rows.txt", "".join(lab.lines(NSL_TEST, 20)))
            call(lab.run("nsl_kdd"), source)

        return Probe(f"nsl_kdd: {name}", "detect", action, True)

    def broken_run(name: str, change: Callable[[Path], None]) -> Probe:
        from ids_lightning.edge.detector import detect

        def action(_):
            folder = lab.copy_run("nsl_kdd", change)
            source = lab.file("rows.txt", "".join(lab.lines(NSL_TEST, 20)))
            detect(folder, source, source.with_suffix(".jsonl"), progress=False)

        return Probe(f"run folder: {name}", "detect", action, True)

    def edit_preprocess(edit: Callable[[dict], object]) -> Callable[[Path], None]:
        def change(folder: Path) -> None:
            state = json.loads((folder / "preprocess.json").read_text())
            edited = edit(state)
            (folder / "preprocess.json").write_text(json.dumps(state if edited is None else edited))

        return change

    def raw_preprocess(data: bytes) -> Callable[[Path], None]:
        return lambda folder: (folder / "preprocess.json").write_bytes(data)

    def detect_call(output: Callable[[Path], Path] = lambda source: source.with_suffix(".jsonl"), **options):
        from ids_lightning.edge.detector import detect

        return lambda run, source: detect(run, source, output(source), progress=False, **options)

    def link_to(source: Path) -> Path:
        link = source.with_name("alerts.jsonl")
        link.symlink_to(source)
        return link

    def onehot_without_names(state: dict) -> None:
        state.update(encoding="onehot")
        state.pop("feature_names", None)

    def nan_model(folder: Path) -> None:
        import numpy as np
        import onnx
        from onnx import TensorProto, helper

        from ids_lightning.core.preprocess import Preprocessor

        pre = Preprocessor.load(folder / "preprocess.json")
        weights = helper.make_tensor("w", TensorProto.FLOAT, [pre.num_features, len(pre.class_names)],
                                     np.full(pre.num_features * len(pre.class_names), np.nan, np.float32))  # fmt: skip
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["features", "w"], ["probabilities"])],
            "nan",
            [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", pre.num_features])],
            [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(pre.class_names)])],
            [weights],
        )
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), folder / "model.onnx")

    def truncated_gzip(text: str) -> bytes:
        whole = gzip.compress(text.encode())
        return whole[: len(whole) // 2]

    deep = b"[" * 100000 + b"]" * 100000
    return [
        nsl("clean", lambda ls: ("".join(ls), 200)),
        nsl(
            "invalid UTF-8 byte",
            lambda ls: (
                b"".join(x.encode() for x in ls[:5])
                + b"0,tcp,\xff\xfe"
                + ls[5][7:].encode()
                + b"".join(x.encode() for x in ls[6:]),
                200,
            ),
        ),
        nsl("over-long line", lambda ls: ("".join(with_line(ls, 3, "x" * 1_500_000 + "\n")), 201)),
        nsl("byte-order mark", lambda ls: (b"\xef\xbb\xbf" + "".join(ls).encode(), 200)),
        nsl("CRLF line ends", lambda ls: ("".join(x.rstrip("\r\n") + "\r\n" for x in ls), 200)),
        nsl(
            "wrong field counts",
            lambda ls: ("".join(with_line(with_line(ls, 2, "a,b,c\n"), 9, ls[0].rstrip() + ",x,y\n")), 202),
        ),
        nsl(
            "NaN, inf and negative values",
            lambda ls: (
                "".join(
                    [
                        ls[0].replace("0,tcp", "nan,tcp", 1),
                        ls[1].replace("0,", "-5,", 1),
                        ls[2].replace("0,", "inf,", 1),
                        *ls[3:],
                    ]
                ),
                200,
            ),
        ),
        nsl("unknown attack name", lambda ls: ("".join(with_line(ls, 4, ls[0].replace(",normal,", ",martian,"))), 201)),
        nsl("unseen category", lambda ls: ("".join(with_line(ls, 4, ls[0].replace(",tcp,", ",quic,", 1))), 201)),
        nsl("unlabelled rows", lambda ls: ("".join(x.rsplit(",", 2)[0] + "\n" for x in ls), 200)),
        nsl("blank lines", lambda ls: ("".join(with_line(with_line(ls, 3, "\n"), 8, "\n")), 202)),
        nsl(
            "NUL bytes",
            lambda ls: (
                "".join(with_line(ls, 6, ls[0].replace(",tcp,", ",tc\x00p,", 1).replace("0,", "0\x00,", 1))),
                201,
            ),
        ),
        nsl("10,000 fields on a line", lambda ls: ("".join(with_line(ls, 6, ",".join(["1"] * 10000) + "\n")), 201)),
        nsl("a line of 200 KB of commas", lambda ls: ("".join(with_line(ls, 6, "," * 200_000 + "\n")), 201)),
        nsl("no newline at the end", lambda ls: ("".join(ls).rstrip("\n"), 200)),
        Probe(
            "nsl_kdd: truncated gzip",
            "detect",
            lambda _: detect_counts(
                lab, "nsl_kdd", lab.file("cut.txt.gz", truncated_gzip("".join(lab.lines(NSL_TEST, 2000)))), 2000
            ),
            True,
        ),
        Probe(
            "nsl_kdd: archive cut inside its first line",
            "detect",
            lambda _: detect_counts(
                lab, "nsl_kdd", lab.file("tiny.txt.gz", truncated_gzip(lab.lines(NSL_TEST, 1)[0])), 1
            ),
            True,
        ),
        Probe(
            "nsl_kdd: empty file", "detect", lambda _: detect_counts(lab, "nsl_kdd", lab.file("empty.txt", ""), 0), True
        ),
        Probe(
            "nsl_kdd: only garbage",
            "detect",
            lambda _: detect_counts(lab, "nsl_kdd", lab.file("junk.txt", "hello\nworld\n" * 30), 60),
            True,
        ),
        refuse_setting("--chunk-rows 0", detect_call(chunk_rows=0)),
        refuse_setting("--output is the input", detect_call(output=lambda source: source)),
        refuse_setting("--output links to the input", detect_call(output=link_to)),
        refuse_setting("--model that does not exist", detect_call(model="model.int4.onnx")),
        broken_run(
            "class names in another order", edit_preprocess(lambda s: s.update(class_names=s["class_names"][::-1]))
        ),
        broken_run(
            "two classes named in preprocess.json",
            edit_preprocess(lambda s: s.update(class_names=["normal", "attack"])),
        ),
        broken_run("feature count differs", edit_preprocess(onehot_without_names)),
        broken_run("model.onnx missing", lambda f: (f / "model.onnx").unlink()),
        broken_run("model outputs NaN", nan_model),
        broken_run("model.onnx is not ONNX", lambda f: (f / "model.onnx").write_bytes(b"not a model")),
        broken_run("preprocess.json not JSON", raw_preprocess(b"{not json")),
        broken_run("preprocess.json nested 100,000 deep", raw_preprocess(deep)),
        broken_run("preprocess.json with a 5,000-digit integer", raw_preprocess(b'{"version": ' + b"9" * 5000 + b"}")),
        broken_run("preprocess.json not UTF-8", raw_preprocess(b'{"version": "\xff"}')),
        broken_run("preprocess.json with wrong types", edit_preprocess(lambda s: s.update(numeric_min="zero"))),
        zeek("clean", lambda h, r: ("".join(h + r), 300)),
        zeek(
            "invalid UTF-8 byte",
            lambda h, r: (
                "".join(h).encode()
                + b"".join(x.encode() for x in r[:10])
                + b"\xff\xfe\xfd\n"
                + b"".join(x.encode() for x in r[10:]),
                301,
            ),
        ),
        zeek("4 MB line without tabs", lambda h, r: ("".join(h + r[:50] + ["y" * 4_000_000 + "\n"] + r[50:]), 301)),
        zeek(
            "comment lines inside",
            lambda h, r: ("".join(h + r[:20] + ["#close\t2020\n"] + r[20:] + ["#close\t2021\n"]), 300),
        ),
        zeek("wrong field count", lambda h, r: ("".join(h + r[:20] + ["a\tb\n"] + r[20:]), 301)),
        zeek(
            "port 70000",
            lambda h, r: (
                "".join([*h, "\t".join([*r[0].split("\t")[:5], "70000", *r[0].split("\t")[6:]]), *r[1:]]),
                300,
            ),
        ),
        zeek(
            "unlabelled live log",
            lambda h, r: (
                "".join(
                    [x.replace("   label   detailed-label", "") if x.startswith("#fields") else x for x in h]
                    + [x.split("   ")[0] + "\n" for x in r]
                ),
                300,
            ),
        ),
        Probe(
            "iot23 zeek: truncated gzip",
            "detect",
            lambda _: detect_counts(
                lab, "iot23", lab.file("cut.conn.log.labeled.gz", truncated_gzip("".join(lab.lines(ZEEK, 3000)))), 3000
            ),
            True,
        ),
        csv_probe("clean export", IOT23_CSV, "iot23", lambda h, r: (h + "".join(r), len(r))),
        csv_probe("semicolon export", IOT23_CSV, "iot23", lambda h, r: ((h + "".join(r)).replace(",", ";"), len(r))),
        csv_probe(
            "export with BOM and CRLF",
            IOT23_CSV,
            "iot23",
            lambda h, r: (b"\xef\xbb\xbf" + "".join(x.rstrip("\r\n") + "\r\n" for x in [h, *r]).encode(), len(r)),
        ),
        csv_probe("clean", BOT_IOT, "bot_iot", lambda h, r: (h + "".join(r), 200)),
        csv_probe(
            "tab-separated .csv with CRLF",
            BOT_IOT,
            "bot_iot",
            lambda h, r: ("".join(x.rstrip("\r\n").replace(",", "\t") + "\r\n" for x in [h, *r]), 200),
        ),
        csv_probe(
            "semicolon-separated", BOT_IOT, "bot_iot", lambda h, r: ("".join(x.replace(",", ";") for x in [h, *r]), 200)
        ),
        csv_probe("a lone # line", BOT_IOT, "bot_iot", lambda h, r: (h + "".join(r[:9]) + "#\n" + "".join(r[9:]), 201)),
        csv_probe(
            "invalid UTF-8 byte",
            BOT_IOT,
            "bot_iot",
            lambda h, r: ((h + "".join(r[:9])).encode() + b"e,tcp,\xff\n" + "".join(r[9:]).encode(), 201),
        ),
    ]


def prepare_probes(lab: Lab) -> list[Probe]:
    from ids_lightning.data.prepare import prepare

    def counted(path: Path, records: int, **options) -> dict:
        (result,) = prepare([path], path.parent / "parquet", **options)
        return {"rows_in": records, "rows_out": result["rows"], "rows_skipped": result["skipped"]}

    def zeek_text(extra: str = "", at: int = 20) -> tuple[str, int]:
        lines = lab.lines(ZEEK, 308)
        header = [x for x in lines if x.startswith("#")]
        rows = [x for x in lines if not x.startswith("#")][:300]
        return "".join(header + rows[:at]) + extra + "".join(rows[at:]), 300 + (1 if extra else 0)

    def same_names(_):
        first = lab.file("CTU-X.conn.log.labeled", zeek_text()[0])
        second = lab.file("CTU-X.conn.log.labeled.gz", gzip.compress(zeek_text()[0].encode()))
        prepare([first, second], lab.root / "same")

    return [
        Probe(
            "prepare: clean Zeek log",
            "prepare",
            lambda _: counted(lab.file("a.conn.log.labeled", zeek_text()[0]), 300),
            False,
        ),
        Probe("prepare: two inputs, one output name", "prepare", same_names, True),
        Probe(
            "prepare: invalid UTF-8, skip",
            "prepare",
            lambda _: counted(
                lab.file(
                    "b.conn.log.labeled",
                    zeek_text("\udcff\n".encode("utf-8", "surrogateescape").decode("latin-1"))[0].encode("latin-1"),
                ),
                301,
                bad_rows="skip",
            ),
            False,
        ),
        Probe(
            "prepare: invalid UTF-8, error",
            "prepare",
            lambda _: counted(
                lab.file(
                    "c.conn.log.labeled",
                    zeek_text("\udcff\n".encode("utf-8", "surrogateescape").decode("latin-1"))[0].encode("latin-1"),
                ),
                301,
            ),
            True,
        ),
        Probe(
            "prepare: 2 MB line, skip",
            "prepare",
            lambda _: counted(
                lab.file("d.conn.log.labeled", zeek_text("z" * 2_000_000 + "\n")[0]), 301, bad_rows="skip"
            ),
            False,
        ),
        Probe(
            "prepare: truncated gzip",
            "prepare",
            lambda _: counted(lab.file("e.conn.log.labeled.gz", gzip.compress(zeek_text()[0].encode())[:3000]), 300),
            True,
        ),
        Probe(
            "prepare: archive cut inside its first line",
            "prepare",
            lambda _: counted(lab.file("f.conn.log.labeled.gz", gzip.compress(zeek_text()[0].encode())[:40]), 300),
            True,
        ),
        Probe("prepare: a file of no dataset", "prepare", lambda _: counted(lab.file("notes.txt", "hello\n"), 1), True),
        Probe(
            "prepare: tab-separated BoT-IoT",
            "prepare",
            lambda _: counted(lab.file("bot.csv", "".join(x.replace(",", "\t") for x in lab.lines(BOT_IOT, 101))), 100),
            False,
        ),
    ]


def hostile_folder_probes(lab: Lab) -> list[Probe]:
    from ids_lightning.analysis.attack import attack
    from ids_lightning.cli.export import main as export_main

    bomb = pickle.dumps(_Writer(str(lab.sentinel)))
    hostile = {
        "pickle in model.net.dropout": (
            "model.net.dropout",
            {"_target_": "torch.load", "_args_": [{"_target_": "io.BytesIO", "_args_": [bomb]}], "weights_only": False},
        ),
        "numpy.savetxt as the net": ("model.net._target_", "numpy.savetxt"),
        "Path.write_text as the datamodule": ("dataset._target_", "pathlib.Path.write_text"),
        "a _target_ inside read_options": (
            "dataset.read_options",
            {"column_map": {"_target_": "os.system", "_args_": [f"touch {lab.sentinel}"]}},
        ),
        "a 10^60 kernel size": ("model.net.kernel_size", 10**60),
        "nested 10 deep": ("model.net.hidden", {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": 1}}}}}}}}}}),
    }
    raw = {
        "!!python/object/apply": f"x: !!python/object/apply:os.system ['touch {lab.sentinel}']\n".encode(),
        "!!binary value": b"model: {net: {_target_: ids_lightning.models.LSTM, dropout: !!binary aGVsbG8=}}\n",
        "config.yaml not UTF-8": b"model: \xff\xfe\n",
        "config.yaml nested 100,000 deep": b"x: " + b"[" * 100000 + b"]" * 100000 + b"\n",
    }

    def edit_yaml(key, value):
        def change(folder: Path) -> None:
            config = yaml.safe_load((folder / "config.yaml").read_text())
            node = config
            *parents, last = key.split(".")
            for part in parents:
                node = node[part]
            node[last] = value
            (folder / "config.yaml").write_text(yaml.safe_dump(config))

        return change

    def replace_yaml(data: bytes):
        return lambda folder: (folder / "config.yaml").write_bytes(data)

    tools = {
        "export": lambda folder: export_main([str(folder), "--data-dir", str(lab.data)]),
        "attack": lambda folder: attack(folder, eps=[0.1], max_rows=64, attacks=("fgsm",), data_dir=lab.data),
    }
    out = []
    changes = {name: edit_yaml(*spec) for name, spec in hostile.items()} | {n: replace_yaml(d) for n, d in raw.items()}
    changes |= {
        "config.yaml missing": lambda f: (f / "config.yaml").unlink(),
        "checkpoint truncated": lambda f: (f / "checkpoints" / "epoch_000.ckpt").write_bytes(
            (f / "checkpoints" / "epoch_000.ckpt").read_bytes()[:2000]
        ),
        "checkpoint of another net": edit_yaml("model.net.hidden_size", 32),
    }
    for name, change in changes.items():
        for tool, call in tools.items():
            out.append(
                Probe(f"run folder: {name}", tool, lambda _, c=change, t=call: t(lab.copy_run("bot_iot", c)), True)
            )

    def symlinked_robustness(_):
        outside = lab.root / "outside"
        outside.mkdir(exist_ok=True)
        folder = lab.copy_run("bot_iot", lambda f: (f / "robustness").symlink_to(outside, target_is_directory=True))
        tools["attack"](folder)

    out.append(Probe("run folder: robustness/ links outside", "attack", symlinked_robustness, True))
    out.append(Probe("run folder: honest", "export", lambda _: tools["export"](lab.run("bot_iot")) and None, False))
    out.append(Probe("run folder: honest", "attack", lambda _: tools["attack"](lab.run("bot_iot")) and None, False))
    return out


class _Writer:
    """Unpickling this creates a file: proof that a pickle ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def report_probes(lab: Lab) -> list[Probe]:
    from ids_lightning.analysis.report import report

    def sweep(content: bytes | None) -> Path:
        folder = lab.root / "sweeps" / str(time.perf_counter_ns())
        (folder / "0").mkdir(parents=True)
        if content is not None:
            (folder / "0" / "metrics.json").write_bytes(content)
        return folder

    honest = json.dumps(
        {"model": "cnn", "dataset": "nsl_kdd", "split": "official", "seed": 1, "test/acc": 0.75}
    ).encode()
    return [
        Probe("report: metrics.json not JSON", "report", lambda _: report([sweep(b"{oops")]), True),
        Probe("report: metrics.json a list", "report", lambda _: report([sweep(b"[1, 2]")]), True),
        Probe("report: no runs", "report", lambda _: report([sweep(None)]), True),
        Probe("report: one honest run", "report", lambda _: report([sweep(honest)]) and None, False),
    ]


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


def train_counts(metrics: dict, records: int) -> dict:
    """Rows in; rows used (every split) plus rows dropped as classes absent from training; skips."""
    used = sum(sum(counts.values()) for counts in metrics["class_counts"].values())
    dropped = sum(metrics["rows_dropped_unseen_class"].values())
    return {"rows_in": records, "rows_out": used + dropped, "rows_skipped": metrics["rows_skipped"]}


def _gz_root(lab: Lab, text: str) -> Path:
    root = lab.root / "data" / str(time.perf_counter_ns())
    (root / "nsl_kdd").mkdir(parents=True)
    (root / "nsl_kdd" / "KDDTrain+.txt.gz").write_bytes(gzip.compress(text.encode())[:-300])
    return root


# --- running -----------------------------------------------------------------------------------
def run_probes(data_dir: Path, fast: bool = False, names: list[str] | None = None) -> dict:
    os.environ.setdefault("IDS_DATA_DIR", str(data_dir))
    with tempfile.TemporaryDirectory(prefix="ids-chaos-") as tmp:
        lab = Lab(Path(tmp), data_dir)
        selected = [p for p in probes(lab) if (p.fast or not fast) and (names is None or p.name in names)]
        rows = [classify(p, lab) for p in selected]
    summary = {outcome: sum(1 for r in rows if r["outcome"] == outcome) for outcome in OUTCOMES}
    unbalanced = [r["probe"] for r in rows if r["rows_in"] != r["rows_out"] + r["rows_skipped"]
                  and r["outcome"] not in ("clear_error", "traceback", "code_execution")]  # fmt: skip
    return {"probes": len(rows), "summary": summary, "unbalanced_rows": unbalanced, "rows": rows}


def format_table(result: dict) -> str:
    lines = [f"{'tool':8} {'outcome':14} {'in':>6} {'out':>6} {'skip':>5}  probe — detail"]
    for r in result["rows"]:
        lines.append(
            f"{r['tool']:8} {r['outcome']:14} {r['rows_in']:>6} {r['rows_out']:>6} {r['rows_skipped']:>5}  "
            f"{r['probe']}" + (f" — {r['detail']}" if r["detail"] else "")
        )
    lines.append(f"{result['probes']} probes: " + ", ".join(f"{k} {v}" for k, v in result["summary"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="only the probes that need no training")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("IDS_DATA_DIR", "data")), help="data root")
    parser.add_argument(
        "--output", type=Path, default=PROJECT_ROOT / "outputs" / "bench" / "chaos.json", help="JSON file"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = run_probes(args.data_dir.resolve(), args.fast)
    result["seconds"] = round(time.perf_counter() - started, 1)
    atomic_write_json(args.output, result)
    print(format_table(result))
    print(f"{result['seconds']} s; written to {args.output}")
    bad = sum(result["summary"][o] for o in ("traceback", "silent_loss", "code_execution"))
    if bad or result["unbalanced_rows"]:
        raise SystemExit(1)
    return result


if __name__ == "__main__":
    main()
