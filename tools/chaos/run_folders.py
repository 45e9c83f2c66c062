"""Hostile and broken run folders against ``ids export``, ``ids attack``, ``ids edge-bench`` and
``ids ensemble``, and the benches run as modules: code in configs and checkpoints, interpolations,
alias bombs, links planted where outputs go, pipes where files are read."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from tools.chaos.lab import Call, Probe, Workspace

Change = Callable[[Path], None]


def export(ws: Workspace, run: Path, names: tuple[str, ...]) -> Call:
    return Call(["export", run, "--data-dir", ws.lab.data], names=names)


def attack(ws: Workspace, run: Path, names: tuple[str, ...]) -> Call:
    argv = ["attack", run, "--eps", "0.1", "--max-rows", "64", "--attacks", "fgsm", "--data-dir", ws.lab.data]
    return Call(argv, names=names)


def edge_bench(ws: Workspace, run: Path, names: tuple[str, ...], *extra: str) -> Call:
    argv = ["edge-bench", run, "--batches", "1", "16", "--threads", "1", "--latency-calls", "20", "--seconds", "0.1"]
    return Call([*argv, *extra], names=names)


def sentinel(folder: Path) -> str:
    """The file hostile code in a copied run folder (``<lab>/probes/NNN/run``) would make."""
    return str(folder.parents[2] / "outside" / "pwned")


def edit_config(key: str, value: object | Callable[[Path], object]) -> Change:
    def change(folder: Path) -> None:
        config = yaml.safe_load((folder / "config.yaml").read_text())
        node = config
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value(folder) if callable(value) else value
        (folder / "config.yaml").write_text(yaml.safe_dump(config))

    return change


def raw_config(data: bytes | Callable[[Path], bytes]) -> Change:
    return lambda folder: (folder / "config.yaml").write_bytes(data(folder) if callable(data) else data)


def config_with(text: str) -> Change:
    """config.yaml with ``text`` appended as YAML (a duplicate key, an interpolation)."""
    return lambda folder: (folder / "config.yaml").write_text((folder / "config.yaml").read_text() + text)


def fifo(relative: str) -> Change:
    def change(folder: Path) -> None:
        (folder / relative).unlink()
        os.mkfifo(folder / relative)

    return change


def link_outside(relative: str) -> Change:
    """A link named like an output of the command, to a file outside: replaced, never written through."""

    def change(folder: Path) -> None:
        (folder / relative).unlink(missing_ok=True)
        (folder / relative).symlink_to(folder.parents[2] / "outside" / "victim.txt")

    return change


ALIAS_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(8)]
).encode()


def hostile_folder_probes() -> list[Probe]:
    """Each change against export and attack: never code, never a traceback, never a write out."""
    hostile: dict[str, tuple[Change, tuple[str, ...]]] = {
        "pickle in model.net.dropout": (
            edit_config(
                "model.net.dropout",
                lambda f: {
                    "_target_": "torch.load",
                    "_args_": [{"_target_": "io.BytesIO", "_args_": [pickle.dumps(_Writer(sentinel(f)))]}],
                    "weights_only": False,
                },
            ),
            ("config.yaml",),
        ),
        "numpy.savetxt as the net": (edit_config("model.net._target_", "numpy.savetxt"), ("config.yaml",)),
        "Path.write_text as the datamodule": (
            edit_config("dataset._target_", "pathlib.Path.write_text"),
            ("config.yaml",),
        ),
        "a _target_ inside read_options": (
            edit_config(
                "dataset.read_options",
                lambda f: {"column_map": {"_target_": "os.system", "_args_": [f"touch {sentinel(f)}"]}},
            ),
            ("config.yaml",),
        ),
        "a 10^60 kernel size": (edit_config("model.net.kernel_size", 10**60), ("config.yaml", "kernel_size")),
        "nested 10 deep": (
            edit_config("model.net.hidden", {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": 1}}}}}}}}}}),
            ("config.yaml",),
        ),
        "a window of 100,000 flows": (edit_config("dataset.window", 100_000), ("config.yaml", "window")),
        "!!python/object/apply": (
            raw_config(lambda f: f"x: !!python/object/apply:os.system ['touch {sentinel(f)}']\n".encode()),
            ("config.yaml",),
        ),
        "!!binary value": (
            raw_config(b"model: {net: {_target_: ids_lightning.models.LSTM, dropout: !!binary aGVsbG8=}}\n"),
            ("config.yaml",),
        ),
        "config.yaml not UTF-8": (raw_config(b"model: \xff\xfe\n"), ("config.yaml",)),
        "config.yaml nested 100,000 deep": (
            raw_config(b"x: " + b"[" * 100000 + b"]" * 100000 + b"\n"),
            ("config.yaml",),
        ),
        "config.yaml an alias bomb": (raw_config(ALIAS_BOMB), ("config.yaml",)),
        "config.yaml with a key twice": (config_with("seed: 8\n"), ("config.yaml",)),
        "dataset.files climbing out of the data root": (
            edit_config("dataset.files", ["../../outside/secret.txt"]),
            ("dataset.files",),
        ),
        "dataset.files an absolute path outside": (
            edit_config("dataset.files", lambda f: [str(f.parents[2] / "outside" / "secret.txt")]),
            ("dataset.files",),
        ),
        "config.yaml missing": (lambda f: (f / "config.yaml").unlink(), ("config.yaml",)),
        "config.yaml is a FIFO": (fifo("config.yaml"), ("config.yaml",)),
        "checkpoint truncated": (lambda f: _truncate(f / "checkpoints" / "epoch_000.ckpt"), ("epoch_000.ckpt",)),
        "checkpoint is a FIFO": (fifo("checkpoints/epoch_000.ckpt"), ("epoch_000.ckpt",)),
        "checkpoint of another net": (edit_config("model.net.hidden_size", 32), ("epoch_000.ckpt",)),
    }
    tools = {"export": export, "attack": attack}
    out = []
    for name, (change, names) in hostile.items():
        for tool, call in tools.items():
            out.append(Probe(f"run folder: {name}", tool, _folder_call(change, call, names), True))
    out += [
        Probe("run folder: honest", "export", _folder_call(lambda f: None, export, ()), False),
        # an interpolation in a run folder is text, never resolved: nothing from outside reaches the output
        Probe(
            "run folder: config.yaml copies an environment variable",
            "export",
            _folder_call(edit_config("tags", ["${oc.env:IDS_CHAOS_SECRET}"]), export, ()),
            False,
        ),
        Probe(
            "run folder: config.yaml with an unknown resolver",
            "attack",
            _folder_call(edit_config("tags", ["${nothere:x}"]), attack, ()),
            False,
        ),
        Probe("run folder: honest", "attack", _folder_call(lambda f: None, attack, ()), False),
        Probe(
            "run folder: model.int8.onnx a link to a file outside",
            "export",
            _folder_call(link_outside("model.int8.onnx"), export, ()),
            False,
        ),
        Probe(
            "run folder: bench_rows.npy a link to a file outside",
            "export",
            _folder_call(link_outside("bench_rows.npy"), export, ()),
            False,
        ),
        Probe(
            "run folder: robustness/ a link to a folder outside",
            "attack",
            _folder_call(_robustness_outside, attack, ("robustness",)),
            True,
        ),
        Probe(
            "run folder: metrics.json not JSON",
            "export",
            _folder_call(lambda f: (f / "metrics.json").write_text("{oops"), export, ("metrics.json",)),
            True,
        ),
    ]
    return out


def edge_bench_probes() -> list[Probe]:
    def npy(data: object | Callable[[Path], object]) -> Change:
        def change(folder: Path) -> None:
            with open(folder / "bench_rows.npy", "wb") as handle:
                np.save(handle, data(folder) if callable(data) else data, allow_pickle=True)

        return change

    def probe(name: str, change: Change, names: tuple[str, ...], *extra: str, refuse: bool = True) -> Probe:
        return Probe(
            f"edge bench: {name}",
            "edge-bench",
            _folder_call(change, lambda ws, run, n: edge_bench(ws, run, n, *extra), names),
            refuse,
        )

    return [
        probe("honest", lambda f: None, (), refuse=False),
        probe("bench_rows.npy not NumPy", lambda f: (f / "bench_rows.npy").write_text("rows"), ("bench_rows.npy",)),
        probe(
            "bench_rows.npy holds a pickle",
            npy(lambda f: np.array([_Writer(sentinel(f))], dtype=object)),
            ("bench_rows.npy",),
        ),
        probe("bench_rows.npy of another width", npy(np.zeros((16, 7), np.float32)), ("bench_rows.npy",)),
        probe("bench_rows.npy is a FIFO", fifo("bench_rows.npy"), ("bench_rows.npy",)),
        probe("bench_labels.npy missing", lambda f: (f / "bench_labels.npy").unlink(), ("bench_labels.npy",)),
        probe("--threads 100000", lambda f: None, ("--threads",), "--threads", "100000"),
        probe("--batches 0", lambda f: None, ("--batches",), "--batches", "0"),
        probe("--seconds -1", lambda f: None, ("--seconds",), "--seconds", "-1"),
    ]


def ensemble_probes() -> list[Probe]:
    def members(ws: Workspace, second: str = "nsl_kdd") -> list[Path]:
        first = ws.copy_run("nsl_kdd")
        other = ws.folder / "second"
        first.rename(ws.folder / "first")
        ws.copy_run(second).rename(other)
        return [ws.folder / "first", other]

    def ensemble(ws: Workspace, runs: list[Path], names: tuple[str, ...], output: Path | None = None) -> Call:
        argv = ["ensemble", *runs, "--output", output or ws.folder / "ensemble", "--data-dir", ws.lab.data]
        return Call(argv, names=names)

    def seeds_folder(content: str) -> Callable[[Workspace], Call]:
        def make(ws: Workspace) -> Call:
            members(ws)
            (ws.folder / "replicas.json").write_text(content)
            return ensemble(ws, [ws.folder], ("replicas.json",))

        return make

    return [
        Probe("ensemble: two runs", "ensemble", lambda ws: ensemble(ws, members(ws), ()), False),
        Probe("ensemble: one run", "ensemble", lambda ws: ensemble(ws, members(ws)[:1], ("two runs",)), True),
        Probe(
            "ensemble: runs of two datasets",
            "ensemble",
            lambda ws: ensemble(ws, members(ws, "bot_iot"), ("second",)),
            True,
        ),
        Probe(
            "ensemble: output is a member",
            "ensemble",
            lambda ws: ensemble(ws, (runs := members(ws)), ("first",), runs[0]),
            True,
        ),
        Probe(
            "ensemble: replicas.json names ../outside",
            "ensemble",
            seeds_folder('{"runs": ["first", "../outside"]}'),
            True,
        ),
        Probe("ensemble: replicas.json not JSON", "ensemble", seeds_folder("{runs"), True),
    ]


def bench_module_probes() -> list[Probe]:
    """The benches run as ``python -m ids_lightning.bench.<name>``: a refusal is one line too."""

    def module(name: str, argv: Callable[[Workspace], list], names: tuple[str, ...]) -> Probe:
        return Probe(
            f"bench module: {name}",
            "bench",
            lambda ws: Call(argv(ws), names=names, module=f"ids_lightning.bench.{name}"),
            True,
        )

    return [
        module("detector", lambda ws: [ws.lab.run("bot_iot"), "--repeats", "1"], ("bot_iot",)),
        module(
            "scale",
            lambda ws: ["--rows", "10", "--data-dir", ws.folder, "--output", ws.folder / "scale.json"],
            ("iot23",),
        ),
        module(
            "results",
            lambda ws: ["--results", ws.folder / "missing", "--output", ws.folder / "results.md"],
            ("missing",),
        ),
    ]


def _folder_call(change: Change, call: Callable[[Workspace, Path, tuple[str, ...]], Call], names: tuple[str, ...]):
    def make(ws: Workspace) -> Call:
        return call(ws, ws.copy_run("bot_iot", change), names)

    return make


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:2000])


def _robustness_outside(folder: Path) -> None:
    (folder / "robustness").symlink_to(folder.parents[2] / "outside", target_is_directory=True)


class _Writer:
    """Unpickling this creates a file: proof that a pickle ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))
