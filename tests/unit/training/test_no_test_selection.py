"""Nothing is selected on a test set: every monitored or optimised metric of every config is a
validation (or training) metric, and the entry point refuses a test metric."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from ids_lightning.core.errors import ConfigError
from ids_lightning.training.checks import check_config
from ids_lightning.training.config import CONFIG_DIR, compose

SELECTING_KEYS = ("monitor", "optimized_metric", "metric")


def selecting_values(node: object, path: str = "") -> list[tuple[str, str]]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key in SELECTING_KEYS and isinstance(value, str):
                found.append((where, value))
            found += selecting_values(value, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += selecting_values(value, f"{path}[{i}]")
    return found


CONFIGS = sorted(CONFIG_DIR.rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_no_config_selects_on_a_test_metric(path: Path):
    for where, value in selecting_values(yaml.safe_load(path.read_text()) or {}):
        assert value.startswith(("val/", "train/")), f"{path}: {where} = {value}"


@pytest.mark.parametrize("experiment", [None, "official", "paper", "seed_protocol"])
def test_composed_runs_select_checkpoints_and_sweeps_on_validation(experiment):
    cfg = compose([f"experiment={experiment}"] if experiment else [], "unused")
    values = selecting_values(OmegaConf.to_container(cfg, resolve=False))
    assert values and all(v.startswith("val/") for _, v in values), values


def test_the_entry_point_refuses_a_test_metric():
    cfg = compose(["optimized_metric=test/acc"], "unused")
    with pytest.raises(ConfigError, match="validation"):
        check_config(cfg)


@pytest.mark.parametrize("lr", ["nan", "inf", "-0.001", "0"])
def test_a_learning_rate_that_trains_nothing_is_refused_before_the_data(lr):
    cfg = compose([f"model.optimizer.lr={lr}"], "unused")
    with pytest.raises(ConfigError, match=r"model\.optimizer\.lr"):
        check_config(cfg)


@pytest.mark.parametrize(
    "override",
    ["+dataset.read_options.x._target_=os.system", "+dataset.read_options.column_map.a._target_=builtins.open"],
)
def test_a_target_inside_the_dataset_settings_is_refused_before_anything_is_built(override):
    """Hydra would instantiate it (its blocklist ends the run with status 1, not a refusal)."""
    cfg = compose(["dataset=bot_iot", override], "unused")
    with pytest.raises(ConfigError, match=r"dataset\.read_options\..*_target_ is not a setting"):
        check_config(cfg)
    check_config(compose(["dataset=bot_iot"], "unused"))  # the dataset's own _target_ is fine


def test_the_tournament_chooses_on_runs_that_never_test():
    """The tournament's grids (docs/protocols.md: 16 TabM, 8 FT-Transformer) compose (the first
    and last configuration of each: they share their keys), select on validation only, and
    their choice runs test nothing; the refits train on the validation rows and choose no epoch."""
    from ids_lightning.bench import tournament

    full = tournament.GRIDS["full"]
    assert (len(full["tabm"]), len(full["ft_transformer"]), full["lightgbm"][0]["trials"]) == (16, 8, 30)
    by_family = tournament.Protocol("nsl_kdd", "by_family")
    for family in ("cnn_lstm", "tabm", "ft_transformer"):
        for config in {id(c): c for c in (full[family][0], full[family][-1])}.values():  # a grid's keys are shared
            arguments = [*tournament.overrides(family, config, by_family, 1), "test=false"]
            cfg = compose(arguments, "unused")
            check_config(cfg)
            assert not cfg.test and cfg.dataset.val_split == "by_family"
            values = selecting_values(OmegaConf.to_container(cfg, resolve=False))
            assert values and all(v.startswith("val/") for _, v in values), values
    refit = compose(tournament._refit("tabm", {"settings": full["tabm"][0]}, by_family, 1), "unused")
    check_config(refit)
    assert refit.dataset.refit and refit.callbacks.early_stopping is None
    assert refit.callbacks.model_checkpoint.monitor is None


def test_iot23_folds_never_validate_on_the_captures_they_test():
    from ids_lightning.bench import tournament

    folds = tournament.protocols("iot23", ["by_capture", "random"])
    assert len(folds) == 2 * len(tournament.IOT23_FOLDS)
    for protocol in folds:
        cfg = compose(tournament.overrides("cnn_lstm", {}, protocol, 1), "unused")
        check_config(cfg)
        tested = set(cfg.dataset.test_partitions)
        assert tested == set(tournament.IOT23_FOLDS[protocol.fold])
        if protocol.validation == "by_capture":
            assert cfg.dataset.val_partitions and not tested & set(cfg.dataset.val_partitions)
