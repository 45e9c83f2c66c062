"""The NSL-KDD ablation: one setting per variant, tagged so the report keeps variants apart, and
ranked by validation alone."""

from __future__ import annotations

from pathlib import Path

from ids_lightning.bench.ablation import BASE, VARIANTS, plan, ranking
from ids_lightning.training.config import compose


def test_each_run_is_the_base_with_one_variant_a_seed_and_its_tags(tmp_path):
    jobs = plan(["base", "focal"], [1, 2], 10, tmp_path, ["debug=limit"])
    assert [(name, seed) for name, seed, _, _ in jobs] == [("base", 1), ("base", 2), ("focal", 1), ("focal", 2)]
    _, _, overrides, folder = jobs[3]
    assert overrides[: len(BASE)] == BASE and folder == tmp_path / "focal" / "s2"
    assert {"model.loss=focal", "seed=2", "tags=[ablation,focal]", "trainer.max_epochs=10"} <= set(overrides)
    assert overrides[-1] == "debug=limit"


def test_every_variant_composes(tmp_path):
    for name, _, overrides, folder in plan(list(VARIANTS), [1], 10, Path(tmp_path)):
        cfg = compose(overrides, folder)
        assert cfg.tags == ["ablation", name] and cfg.dataset._target_.endswith("flow_datamodule")
        assert "adversarial_eval" not in (cfg.callbacks or {})


def test_ranking_reads_validation_only_and_leaves_other_yardsticks_unranked():
    def row(variant, model, val, test):
        return {
            "model": model,
            "experiment": f"ablation+{variant}",
            "val/f1_macro_best_mean": val,
            "test/acc_mean": test,
        }

    table = [
        row("base", "cnn_lstm", 0.80, 0.75),
        row("focal", "cnn_lstm", 0.85, 0.70),
        row("by_family", "cnn_lstm", 0.30, 0.69),  # validated on held-out attack types: not comparable
        row("base", "hist_gradient_boosting", 0.99, 0.77),
    ]
    order = [(r["variant"], r["model"]) for r in ranking(table)]
    assert order == [("focal", "cnn_lstm"), ("base", "cnn_lstm"), ("by_family", "cnn_lstm")]
