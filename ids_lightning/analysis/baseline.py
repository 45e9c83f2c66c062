"""Classical baselines beside every deep result: ``python -m ids_lightning.cli.baseline [overrides]``.

A random forest and histogram gradient boosting (scikit-learn, untuned, seeded) on exactly the
rows a deep run sees: the dataset config and overrides of ``train.py`` build the same
DataModule (same split, preprocessing fitted on training rows, same balancing; with windows,
each sample's own flow and its context features), and the models are fitted on the training
split only. Each writes ``<output>/<model>/metrics.json`` with the keys of a deep run
(``test/acc``, ``test/f1_macro``, ``test/auroc``, ``test/ap_macro``, ``test/recall/<class>``, ``test/f1/<class>``,
``val/*``, and ``model: random_forest`` or ``hist_gradient_boosting``), so
``python -m ids_lightning.cli.report`` puts them in the same table; the report also fits them
itself for every dataset, split and seed of a sweep that lacks them.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import ConfigError
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.core.metrics import confusion_matrix, macro_scores, per_class_scores
from ids_lightning.evaluation.unseen import unseen_scores_of
from ids_lightning.models.batches import Features, WindowedFeatures
from ids_lightning.training.config import RUN_ID, compose, instantiate

log = logging.getLogger(__name__)
BASELINES = ("random_forest", "hist_gradient_boosting")  # model names in metrics.json and reports


def scores(y: np.ndarray, probabilities: np.ndarray, class_names: list[str], stage: str) -> dict:
    """Accuracy, macro precision/recall/F1, macro one-vs-rest ROC-AUC and average precision over
    the classes present (as the deep runs compute them), and recall, F1 and average precision per
    class present."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    predicted = probabilities.argmax(1)
    labels = list(range(len(class_names)))
    confusion = confusion_matrix(y, predicted, len(class_names))
    out = {f"{stage}/{name}": value for name, value in macro_scores(confusion).items()}
    per_class = per_class_scores(confusion)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aucs = [roc_auc_score(y == c, probabilities[:, c]) for c in labels if 0 < (y == c).sum() < len(y)]
    out[f"{stage}/auroc"] = float(np.mean(aucs)) if aucs else None
    per_class["ap"] = [float(average_precision_score(y == c, probabilities[:, c])) if (y == c).any() else None
                       for c in labels]  # fmt: skip
    present = [v for v in per_class["ap"] if v is not None]
    out[f"{stage}/ap_macro"] = float(np.mean(present)) if present else None
    for metric in ("recall", "f1", "ap"):  # recall, AP of the classes with rows, F1 of those with rows or predictions
        out |= {f"{stage}/{metric}/{n}": v for n, v in zip(class_names, per_class[metric]) if v is not None}
    return out


def flow_features(x: Features) -> np.ndarray:
    """One row per sample: its flow's features (with the host-context features of its window
    when ``dataset.context`` is on), the same rows the deep models are scored on."""
    return (x.current_flows() if isinstance(x, WindowedFeatures) else x).numpy()


def _classifier(model: str, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    if model == "random_forest":
        return RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=seed)
    if model == "hist_gradient_boosting":
        return HistGradientBoostingClassifier(random_state=seed)
    raise ConfigError(f"unknown baseline {model!r}; expected one of {BASELINES}")


def fit_baseline(model: str, datamodule, seed: int, tags: list[str]) -> dict:
    """Fit ``model`` on the set-up datamodule's training rows; its ``metrics.json`` content."""
    (x_train, y_train), class_names = datamodule.tensors["train"], datamodule.class_names
    classifier = _classifier(model, seed)
    started = time.perf_counter()
    classifier.fit(flow_features(x_train), y_train.numpy())
    fit_seconds = time.perf_counter() - started

    def probabilities(x: np.ndarray) -> np.ndarray:
        """Columns for every class, also those the model never saw in training."""
        out = np.zeros((len(x), len(class_names)))
        out[:, classifier.classes_] = classifier.predict_proba(x)
        return out

    metrics: dict = {}
    for stage in ("val", "test"):
        x, y = datamodule.tensors[stage]
        stage_probabilities = probabilities(flow_features(x))
        metrics |= scores(y.numpy(), stage_probabilities, class_names, stage)
        if stage == "test":
            metrics |= unseen_scores_of(datamodule, stage_probabilities.argmax(1))
    return {
        **dict(sorted(metrics.items())),
        **datamodule.facts(),
        "model": model,
        "seed": seed,
        "tags": list(tags),
        "fit_seconds": round(fit_seconds, 3),
        **datamodule.stats,
    }


def baseline(overrides: list[str], output_dir: Path | None = None, models: tuple[str, ...] = BASELINES) -> list[dict]:
    """Fit ``models`` on the rows ``train.py overrides`` would train on; write and return their
    metrics."""
    output_dir = output_dir or Path("outputs") / "baselines" / f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{RUN_ID}"
    cfg = compose(overrides, output_dir)
    datamodule = instantiate(cfg.dataset, output_dir=None)
    datamodule.prepare_data()
    datamodule.setup("fit")
    summaries = []
    for model in models:
        summary = fit_baseline(model, datamodule, int(cfg.seed), list(cfg.get("tags") or []))
        atomic_write_json(output_dir / model / "metrics.json", summary)
        log.info(
            "%s on %s (%s split): test accuracy %.3f, macro-F1 %.3f; written to %s",
            model,
            datamodule.name,
            datamodule.options.split.split,
            summary["test/acc"],
            summary["test/f1_macro"],
            output_dir / model / "metrics.json",
        )
        summaries.append(summary)
    return summaries
