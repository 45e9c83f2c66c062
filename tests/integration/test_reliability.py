"""Same seed, same numbers; a re-run skips a finished job; outputs leave no temporary files."""

from __future__ import annotations

import json

import torch

from ids_lightning.training.config import compose
from ids_lightning.training.run import train
from tests.helpers import DATA_DIR, SMALL_RUN, comparable


def test_same_seed_same_numbers_on_cpu(tmp_path, data_dir):
    overrides = [*SMALL_RUN, "trainer.max_epochs=2", "seed=7"]
    first = train(compose(overrides, tmp_path / "a", data_dir=DATA_DIR))
    second = train(compose(overrides, tmp_path / "b", data_dir=DATA_DIR))
    assert comparable(first) == comparable(second)
    other = train(compose([*SMALL_RUN, "trainer.max_epochs=2", "seed=8"], tmp_path / "c", data_dir=DATA_DIR))
    assert other["test/loss"] != first["test/loss"]


def test_a_rerun_skips_finished_jobs(tmp_path, data_dir):
    overrides = [*SMALL_RUN, "debug=fast_dev_run"]
    first = train(compose(overrides, tmp_path, data_dir=DATA_DIR))
    stamp = (tmp_path / "metrics.json").stat().st_mtime_ns
    again = train(compose(overrides, tmp_path, data_dir=DATA_DIR))
    assert again == json.loads(json.dumps(first))
    assert (tmp_path / "metrics.json").stat().st_mtime_ns == stamp


def test_outputs_leave_no_temporary_files(tmp_path, data_dir):
    with_export = [o for o in SMALL_RUN if o != "export=none"]
    train(compose([*with_export, "debug=fast_dev_run"], tmp_path, data_dir=DATA_DIR))
    assert not [p.name for p in tmp_path.rglob("*") if ".tmp" in p.name or p.name.endswith(".part")]
    assert (tmp_path / "model.onnx").is_file()


def test_last_checkpoint_follows_every_epoch_even_without_improvement(tmp_path, data_dir):
    # min of a running maximum improves only once: the best checkpoint stays at epoch 0
    overrides = [*SMALL_RUN, "trainer.max_epochs=3", "callbacks.model_checkpoint.monitor=val/f1_macro_best"]
    train(compose([*overrides, "callbacks.model_checkpoint.mode=min"], tmp_path, data_dir=DATA_DIR))
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert last["epoch"] == 2
    assert [p.name for p in (tmp_path / "checkpoints").glob("epoch_*.ckpt")] == ["epoch_000.ckpt"]


def test_an_unloadable_last_checkpoint_resumes_from_the_best_one(tmp_path, data_dir):
    overrides = [*SMALL_RUN, "trainer.max_epochs=2"]
    train(compose(overrides, tmp_path, data_dir=DATA_DIR))
    for name in ("metrics.json", "fit.json"):
        (tmp_path / name).unlink()
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:4096])
    longer = [*overrides, "trainer.max_epochs=3", "allow_changed_config=true"]  # asked for: one more epoch
    again = train(compose(longer, tmp_path, data_dir=DATA_DIR))
    assert again["epochs_run"] == 3


def test_a_run_killed_after_its_last_checkpoint_keeps_its_validation_numbers(tmp_path, data_dir):
    # killed between the last epoch's last.ckpt and fit.json: the re-run resumes into a fit with
    # no epoch left, which logs nothing; its numbers come from the checkpoint's history and best
    overrides = [*SMALL_RUN, "trainer.max_epochs=2", "test=false"]
    first = train(compose(overrides, tmp_path, data_dir=DATA_DIR))
    for name in ("metrics.json", "fit.json"):
        (tmp_path / name).unlink()
    again = train(compose(overrides, tmp_path, data_dir=DATA_DIR))
    assert again["epochs_run"] == 2 and again["best_epoch"] == first["best_epoch"]
    for key in ("val/f1_macro_best", "val/f1_macro", "val/acc", "train/loss"):
        assert again[key] == first[key], key
