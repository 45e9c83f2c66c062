"""A run folder is data, never code: hostile ``config.yaml`` files are refused, naming the key,
and nothing they name is ever called."""

from __future__ import annotations

import pickle

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from ids_lightning.core.errors import MissingDataError
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.training.config import compose
from ids_lightning.training.run_folder import RunFolderError, load_best_model, read_config, rebuild
from tests.helpers import DATA_DIR, datamodule


class Boom:
    """Unpickling this writes a file: proof that a pickle ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    """A run folder as train.py writes it (cnn on NSL-KDD), with untrained weights."""
    folder = tmp_path_factory.mktemp("run")
    cfg = compose(["model=cnn"], folder, data_dir=DATA_DIR)
    plain = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(plain))
    dm = datamodule("nsl_kdd")
    dm.preprocessor.save(folder / "preprocess.json")
    from ids_lightning.models import CNN

    net = CNN(41, 5)
    (folder / "checkpoints").mkdir()
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state}, folder / "checkpoints" / "last.ckpt")
    return folder, net, plain


def hostile(folder, tmp_path, change) -> tuple:
    """A copy of the honest folder whose config.yaml ``change`` (a text edit) made hostile."""
    copy = tmp_path / "hostile"
    copy.mkdir()
    (copy / "checkpoints").mkdir()
    (copy / "checkpoints" / "last.ckpt").write_bytes((folder / "checkpoints" / "last.ckpt").read_bytes())
    (copy / "preprocess.json").write_text((folder / "preprocess.json").read_text())
    (copy / "config.yaml").write_text(change((folder / "config.yaml").read_text()))
    return copy


def test_an_honest_folder_rebuilds_with_its_weights(honest):
    folder, net, _ = honest
    config, dm, rebuilt = rebuild(folder, DATA_DIR)
    assert dm.num_features == 41 and config["seed"] == 42
    assert all(torch.equal(a, b) for a, b in zip(rebuilt.state_dict().values(), net.state_dict().values()))
    model = load_best_model(folder)
    assert model(torch.rand(3, 41)).shape == (3, 5)


def with_value(key: str, value: object):
    def change(text: str) -> str:
        config = yaml.safe_load(text)
        node = config
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
        return yaml.safe_dump(config)

    return change


def pickle_bomb(sentinel) -> dict:
    payload = pickle.dumps(Boom(sentinel))
    return {
        "_target_": "torch.load",
        "_args_": [{"_target_": "io.BytesIO", "_args_": [payload]}],
        "weights_only": False,
    }


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("model.net.dropout", "PICKLE", r"model\.net\.dropout\._(args|target)_ is not allowed"),
        ("model.net._target_", "numpy.savetxt", r"model\.net\._target_ 'numpy\.savetxt' is not one of"),
        ("dataset._target_", "pathlib.Path.write_text", r"dataset\._target_ 'pathlib\.Path\.write_text' is not one of"),
        ("dataset.read_options", {"column_map": {"_target_": "os.system"}}, r"column_map\._\w+_ is not allowed"),
        ("model.net.hidden", {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}, "nested deeper"),
        ("model.net.kernel_size", 10**60, "out of range"),
        ("model.net.surprise", 1, "does not build"),
    ],
)
def test_hostile_values_are_refused_naming_the_key(honest, tmp_path, key, value, message):
    folder, _, _ = honest
    sentinel = tmp_path / "pwned"
    folder = hostile(folder, tmp_path, with_value(key, pickle_bomb(sentinel) if value == "PICKLE" else value))
    rebuilds = [lambda: rebuild(folder, DATA_DIR)]
    if not key.startswith("dataset"):  # the ONNX-side rebuild reads only the net's keys
        rebuilds.append(lambda: load_best_model(folder))
    for rebuild_it in rebuilds:
        with pytest.raises(RunFolderError, match=message) as info:
            rebuild_it()
        assert "config.yaml" in str(info.value)
    assert not sentinel.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model: {net: {_target_: ids_lightning.models.CNN, dropout: !!binary aGVsbG8=}}\n", "holds a bytes"),
        ("x: !!python/object/apply:os.system ['touch pwned']\n", "not a readable YAML file"),
        ("x: " + "9" * 5000 + "\n", "not a readable YAML file"),
        ("x: " + "[" * 5000 + "]" * 5000 + "\n", "not a readable YAML file"),
        ("- just\n- a list\n", "top level must be a mapping"),
        (b"model: \xff\xfe\n".decode("latin-1"), None),
    ],
)
def test_unsafe_or_broken_yaml_is_one_clear_error(honest, tmp_path, text, message):
    folder, _, _ = honest
    if message is None:  # invalid UTF-8
        folder = hostile(folder, tmp_path, lambda _: "")
        (folder / "config.yaml").write_bytes(b"model: \xff\xfe\n")
        message = "not a readable YAML file"
    else:
        folder = hostile(folder, tmp_path, lambda _: text)
    with pytest.raises(RunFolderError, match=message):
        load_best_model(folder)
    assert not (tmp_path / "pwned").exists()


def test_a_folder_from_another_machine_reads_data_from_the_given_root_never_its_own(honest, tmp_path, monkeypatch):
    folder, _, plain = honest
    moved = hostile(folder, tmp_path, with_value("dataset.data_dir", str(tmp_path / "gone" / "data")))
    monkeypatch.setenv("IDS_DATA_DIR", str(DATA_DIR))
    _, dm, _ = rebuild(moved)
    assert dm.options.source.data_dir == DATA_DIR and not (tmp_path / "gone").exists()
    assert read_config(moved)["dataset"]["data_dir"] != plain["dataset"]["data_dir"]
    assert Preprocessor.load(moved / "preprocess.json").num_features == 41
    monkeypatch.delenv("IDS_DATA_DIR")
    monkeypatch.chdir(tmp_path)  # no --data-dir, no $IDS_DATA_DIR: data/ here, not the folder's root
    with pytest.raises(MissingDataError, match=f"under {tmp_path / 'data'}"):
        rebuild(moved)


@pytest.mark.parametrize("files", [["../../outside/secret.txt"], ["/etc/passwd"], "~/notes.txt"])
def test_a_rebuilt_run_reads_no_file_outside_the_data_root(honest, tmp_path, files):
    folder = hostile(honest[0], tmp_path, with_value("dataset.files", files))
    with pytest.raises(RunFolderError, match=r"config.yaml: dataset.files .* leaves the data root"):
        rebuild(folder, DATA_DIR)


@pytest.mark.parametrize(
    ("environment", "primary"),
    [
        ({}, True),
        ({"LOCAL_RANK": "1"}, False),  # the rank Lightning's launcher starts
        ({"NODE_RANK": "1", "LOCAL_RANK": "0"}, False),
        ({"RANK": "0", "LOCAL_RANK": "0"}, True),  # torchrun
        ({"RANK": "3", "LOCAL_RANK": "1"}, False),
        ({"SLURM_PROCID": "2"}, False),
        ({"SLURM_PROCID": "0"}, True),
    ],
)
def test_only_global_rank_zero_writes_the_run_folder(monkeypatch, environment, primary):
    from ids_lightning.core.fileio import is_primary_process

    for key in ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    assert is_primary_process() is primary


def test_a_distributed_run_tests_in_one_process(make_config):
    from ids_lightning.training.run import single_process

    cfg = make_config("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2")
    single = single_process(cfg)
    assert (single.trainer.devices, single.trainer.num_nodes, single.trainer.strategy) == (1, 1, "auto")
    assert cfg.trainer.devices == 2 and cfg.trainer.strategy == "ddp"  # the run's own config is untouched
