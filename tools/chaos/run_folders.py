"""Hostile run folders against export, attack and the rebuild: code in configs and checkpoints, links, deep nesting."""

from __future__ import annotations

import pickle
from pathlib import Path

import yaml

from tools.chaos.lab import (
    Lab,
    Probe,
)


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
