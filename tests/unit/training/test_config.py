"""Every config composes and builds what it names; experiments set their protocol; run ids."""

from __future__ import annotations

import subprocess
import sys

import hydra
import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import Logger

from ids_lightning.datasets import SPECS
from ids_lightning.training.config import CONFIG_DIR, PROJECT_ROOT, instantiate_group, sweep_value, unknown_keys


def options(group: str) -> list[str]:
    """A group's selectable options (``_base`` files hold shared keys and are not options)."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))


@pytest.mark.parametrize("group", ["callbacks", "logger"])
def test_callback_and_logger_configs_build_their_objects(make_config, group):
    expected = {"callbacks": L.Callback, "logger": Logger}[group]
    for name in options(group):
        cfg = make_config(f"{group}={name}")
        built = instantiate_group(cfg.get(group))
        assert len(built) == len([k for k, v in (cfg.get(group) or {}).items() if v]), name
        assert all(isinstance(obj, expected) for obj in built), name


@pytest.mark.parametrize("name", options("model"))
def test_model_configs_build_a_net_sized_from_the_data(make_config, name):
    cfg = make_config(f"model={name}")
    small = hydra.utils.instantiate(cfg.model.net, num_features=41, num_classes=5)
    wide = hydra.utils.instantiate(cfg.model.net, num_features=120, num_classes=2)
    assert small(torch.rand(3, 41)).shape == (3, 5)
    assert wide(torch.rand(3, 120)).shape == (3, 1)
    assert cfg.model.optimizer._partial_ and cfg.model._target_ == "ids_lightning.models.IDSLitModule"


@pytest.mark.parametrize("name", options("dataset"))
def test_dataset_configs_name_a_spec_and_one_of_its_tasks_and_splits(make_config, name):
    cfg = make_config(f"dataset={name}")
    spec = SPECS[cfg.dataset.spec]
    assert spec.name == name
    assert cfg.dataset.task in spec.tasks and cfg.dataset.split in spec.splits
    dm = hydra.utils.instantiate(cfg.dataset)
    assert dm.spec is spec and dm.options.source.files == tuple(cfg.dataset.files)


@pytest.mark.parametrize("override", [f"{g}={n}" for g in ("trainer", "experiment", "debug") for n in options(g)])
def test_trainer_experiment_and_debug_configs_compose(make_config, override):
    cfg = make_config(override)
    if override.startswith("trainer"):
        assert cfg.trainer._target_.endswith("Trainer") and cfg.trainer.max_epochs >= 1
    if override.startswith("experiment"):
        assert cfg.tags == [override.split("=")[1]]


def test_experiments_set_their_protocol(make_config):
    seed_protocol = make_config("experiment=seed_protocol")
    assert (seed_protocol.dataset.split, seed_protocol.dataset.scaler) == ("random", "minmax")
    assert seed_protocol.callbacks.early_stopping is None and seed_protocol.trainer.max_epochs == 50
    official = make_config("experiment=official")
    assert (official.dataset.split, official.dataset.scaler) == ("official", "log_minmax")
    assert official.callbacks.early_stopping is not None and "adversarial_eval" in official.callbacks
    assert official.model.net.conv_channels == official.model.net.hidden_size == 128  # the ablation's choice
    paper = make_config("experiment=paper")
    assert (paper.dataset.split, paper.dataset.scaler, paper.callbacks.early_stopping) == ("random", "minmax", None)
    sensor = make_config("experiment=sensor").dataset  # validated on whole captures: incidents calibrated
    assert (sensor.spec, sensor.split, sensor.val_split) == ("iot23", "by_capture", "by_capture")
    assert sensor.val_partitions and not set(sensor.val_partitions) & set(sensor.test_partitions)


def test_experiments_sweep_every_model_and_dataset(make_config):
    # the seed paper's four nets (official: the CNN-LSTM as the ablation chose it); the
    # transformer is the windows experiment's reference
    for experiment, cnn_lstm in (("paper", "cnn_lstm"), ("official", "cnn_lstm_wide")):
        params = make_config(f"experiment={experiment}").hydra.sweeper.params
        assert set(params.dataset.split(",")) == set(options("dataset"))
        assert set(params.model.split(",")) == {"cnn", "lstm", cnn_lstm, "cnn_bilstm"}
        assert params.seed == "1,2,3"
    assert make_config("experiment=official", "dataset=iot23").dataset.split == "by_capture"


def test_unknown_sweep_metric_is_an_error():
    with pytest.raises(KeyError, match=r"'val/nope' is not in metrics\.json"):
        sweep_value({"val/acc": 0.5}, "val/nope")
    assert sweep_value({"val/acc": 0.5}, "val/acc") == 0.5


def test_run_folders_of_processes_started_together_differ():
    code = "from ids_lightning.training.config import RUN_ID; print(RUN_ID)"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT)
        for _ in range(4)
    ]
    ids = [p.communicate()[0].strip() for p in procs]
    assert len(set(ids)) == 4 and all(len(i) == 6 for i in ids)


def test_a_mistyped_key_gets_the_closest_real_one():
    messages = unknown_keys(["-m", "model=cnn,lstm", "dataset.tsk=binary", "trainer.max_epochs=2", "+extra.key=1"])
    assert messages == ["unknown config key 'dataset.tsk' (did you mean 'dataset.task'?)"]
    assert unknown_keys(["experiment=paper", "callbacks.adversarial_eval.max_rows=64"]) == []
    assert unknown_keys(["model=cnnn", "dataset.task=binary"]) == []  # Hydra reports the bad choice


def test_hydra_writes_no_record_before_the_run_is_accepted(make_config):
    """The run writes it (``folder.record_start``) after its checks: a refused run adds nothing."""
    assert make_config().hydra.output_subdir is None


def test_a_refit_cannot_choose_its_epoch_on_the_rows_it_trains_on(make_config):
    from ids_lightning.core.errors import ConfigError
    from ids_lightning.training.checks import check_config

    with pytest.raises(ConfigError, match=r"callbacks.early_stopping=null and callbacks.model_checkpoint.monitor=null"):
        check_config(make_config("dataset.refit=true"))
    free = ["callbacks.early_stopping=null", "callbacks.model_checkpoint.monitor=null"]
    check_config(make_config("dataset.refit=true", *free))
