"""Tuned gradient-boosted trees as a deployable model: ``ids trees [--trials N] [--output DIR]
[overrides of train.py]``.

LightGBM on exactly the rows a deep run with those overrides sees (same split, preprocessing
fitted on training rows, one flow per sample), tuned by Optuna (TPE, seeded) on validation
macro-F1 only: leaves, learning rate, minimum child samples and feature fraction, with the
number of boosting rounds chosen by early stopping on the validation loss. The best
configuration is exported to ONNX (input ``features``, output ``probabilities``, the class
names in the metadata, as the nets' exports; thresholds and sums in double, as LightGBM), and
the output folder is a run folder: ``preprocess.json``, ``model.onnx``, ``novelty.json``,
``operating_points.json``, ``explain.json`` and ``density.json`` (all from training and
validation rows), the edge bench's rows, the study (``study.json``) and ``metrics.json``
(``model: lightgbm``), so that ``ids detect``, ``ids edge-bench`` and ``ids report`` take it
like a trained net.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ids_lightning.analysis.baseline import scores
from ids_lightning.core import operating, provenance
from ids_lightning.core.density import DENSITY_FILE, BenignDensity
from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.explain import reference_row, save_reference
from ids_lightning.core.fileio import atomic_path, atomic_write_json, output_folder
from ids_lightning.core.novelty import Novelty
from ids_lightning.edge.runtime import CLASS_NAMES_KEY, session
from ids_lightning.evaluation.unseen import unseen_scores_of
from ids_lightning.training.config import RUN_ID, compose, instantiate
from ids_lightning.training.export import stamp_provenance

log = logging.getLogger(__name__)
MODEL = "lightgbm"
OPSET = 17
PARITY_TOLERANCE = 1e-5
EARLY_STOPPING_ROUNDS = 50
DENSITY_ROWS = 20_000  # benign training rows the benign density is fitted on (the nets' fit_rows)


@dataclass(frozen=True)
class TreeSearch:
    """The search of docs/protocols.md (the tournament): ``trials`` TPE trials (sampler seed
    ``study_seed``) over these ranges, rounds up to ``max_rounds`` with early stopping on the
    validation loss."""

    trials: int = 30
    study_seed: int = 0
    max_rounds: int = 2000
    leaves: tuple[int, int] = (15, 255)
    learning_rate: tuple[float, float] = (0.01, 0.3)
    min_child_samples: tuple[int, int] = (5, 100)
    feature_fraction: tuple[float, float] = (0.5, 1.0)


def _classifier(params: dict, rounds: int, seed: int):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        n_estimators=rounds,
        num_leaves=params["num_leaves"],
        learning_rate=params["learning_rate"],
        min_child_samples=params["min_child_samples"],
        colsample_bytree=params["feature_fraction"],
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )


def probabilities_of(classifier, x: np.ndarray, num_classes: int) -> np.ndarray:
    """Columns for every class, also those the trees never saw in training."""
    out = np.zeros((len(x), num_classes))
    out[:, classifier.classes_] = classifier.predict_proba(x)
    return out


def macro_f1(y: np.ndarray, probabilities: np.ndarray, num_classes: int) -> float:
    from ids_lightning.core.metrics import confusion_matrix, macro_scores

    return float(macro_scores(confusion_matrix(y, probabilities.argmax(1), num_classes))["f1_macro"])


def tune(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], num_classes: int, seed: int,
         search: TreeSearch = TreeSearch()) -> tuple[dict, int, list[dict]]:  # fmt: skip
    """The configuration and number of rounds with the best validation macro-F1, and every
    trial (params, rounds, validation macro-F1). No test row is read here."""
    import lightgbm
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials: list[dict] = []

    def objective(trial) -> float:
        params = {
            "num_leaves": trial.suggest_int("num_leaves", *search.leaves, log=True),
            "learning_rate": trial.suggest_float("learning_rate", *search.learning_rate, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", *search.min_child_samples, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", *search.feature_fraction),
        }
        classifier = _classifier(params, search.max_rounds, seed)
        classifier.fit(
            *train,
            eval_X=(val[0],),
            eval_y=(val[1],),
            callbacks=[lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
        )
        rounds = int(classifier.best_iteration_ or search.max_rounds)
        score = macro_f1(val[1], probabilities_of(classifier, val[0], num_classes), num_classes)
        trials.append({"params": params, "rounds": rounds, "val/f1_macro": score})
        log.info("trial %d/%d: validation macro-F1 %.4f after %d rounds %s", len(trials), search.trials, score,
                 rounds, params)  # fmt: skip
        return score

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=search.study_seed))
    study.optimize(objective, n_trials=search.trials)
    best = trials[study.best_trial.number]
    return best["params"], best["rounds"], trials


def fit(params: dict, rounds: int, x: np.ndarray, y: np.ndarray, seed: int):
    """The trees of ``params`` fitted on ``(x, y)`` for exactly ``rounds`` rounds (no early
    stopping: the refit of a chosen configuration)."""
    classifier = _classifier(params, rounds, seed)
    classifier.fit(x, y)
    return classifier


def _tree_nodes(booster, num_classes: int) -> dict[str, list]:
    """The attributes of one ``TreeEnsembleRegressor`` holding every tree of ``booster`` (from
    its JSON dump: thresholds and leaf values as LightGBM keeps them, in double), tree ``t``
    adding to raw score ``t % classes`` (one score when binary)."""
    nodes: dict[str, list] = {key: [] for key in (
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values", "nodes_truenodeids",
        "nodes_falsenodeids", "nodes_missing_value_tracks_true", "target_treeids", "target_nodeids", "target_ids",
        "target_weights")}  # fmt: skip
    targets = 1 if num_classes == 2 else num_classes
    for tree_id, tree in enumerate(booster.dump_model()["tree_info"]):
        counter = iter(range(1 << 30))

        def add(node: dict, tree_id: int = tree_id, counter=counter) -> int:
            node_id = next(counter)
            at = len(nodes["nodes_nodeids"])
            for key, value in (("nodes_treeids", tree_id), ("nodes_nodeids", node_id)):
                nodes[key].append(value)
            if "leaf_value" in node or "split_feature" not in node:
                leaf = {"nodes_featureids": 0, "nodes_modes": "LEAF", "nodes_values": 0.0, "nodes_truenodeids": 0,
                        "nodes_falsenodeids": 0, "nodes_missing_value_tracks_true": 0}  # fmt: skip
                for key, value in leaf.items():
                    nodes[key].append(value)
                leaf_target = {"target_treeids": tree_id, "target_nodeids": node_id, "target_ids": tree_id % targets,
                               "target_weights": node.get("leaf_value", 0.0)}  # fmt: skip
                for key, value in leaf_target.items():
                    nodes[key].append(value)
                return node_id
            if node["decision_type"] != "<=" or node.get("missing_type") == "Zero":
                raise DataError(f"a LightGBM split of type {node['decision_type']!r} "
                                f"(missing: {node.get('missing_type')}) has no export here")  # fmt: skip
            split = {"nodes_featureids": int(node["split_feature"]), "nodes_modes": "BRANCH_LEQ",
                     "nodes_values": float(node["threshold"]), "nodes_truenodeids": 0, "nodes_falsenodeids": 0,
                     "nodes_missing_value_tracks_true": int(bool(node.get("default_left", True)))}  # fmt: skip
            for key, value in split.items():
                nodes[key].append(value)
            nodes["nodes_truenodeids"][at] = add(node["left_child"])
            nodes["nodes_falsenodeids"][at] = add(node["right_child"])
            return node_id

        add(tree["tree_structure"])
    return nodes


def export_trees(classifier, num_features: int, class_names: list[str], path: Path) -> None:
    """``classifier`` as ONNX with the nets' interface: input ``features [batch, F]`` (float32),
    output ``probabilities [batch, classes]`` in the order of ``class_names``, the class names in
    the metadata.

    One ``TreeEnsembleRegressor`` over the input cast to double, with LightGBM's own double
    thresholds and leaf values, sums the raw scores; softmax (two classes: the logistic of the
    one score) makes them probabilities, as LightGBM does. ``onnxmltools``' converter keeps
    thresholds and sums in float32: a float threshold rounded up past a feature value sends
    that row down the other branch (2e-4 off LightGBM's probabilities on KDDTest+ rows)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    seen = [int(c) for c in classifier.classes_]
    if seen != list(range(len(class_names))):
        raise DataError(f"the trees saw classes {seen} of {len(class_names)} in training; export needs every class")
    binary = len(class_names) == 2
    attrs = _tree_nodes(classifier.booster_, len(class_names))
    doubles = {name: attrs.pop(name) for name in ("nodes_values", "target_weights")}
    regressor = helper.make_node(
        "TreeEnsembleRegressor", ["features_double"], ["raw_scores"], domain="ai.onnx.ml",
        n_targets=1 if binary else len(class_names), aggregate_function="SUM", post_transform="NONE", **attrs,
    )  # fmt: skip
    for name, values in doubles.items():
        tensor = numpy_helper.from_array(np.asarray(values, dtype=np.float64), f"{name}_as_tensor")
        regressor.attribute.append(helper.make_attribute(f"{name}_as_tensor", tensor))
    nodes = [helper.make_node("Cast", ["features"], ["features_double"], to=TensorProto.DOUBLE), regressor]
    if binary:  # [1 - sigmoid(z), sigmoid(z)]
        nodes += [
            helper.make_node("Sigmoid", ["raw_scores"], ["positive"]),
            helper.make_node("Neg", ["raw_scores"], ["negated"]),
            helper.make_node("Sigmoid", ["negated"], ["negative"]),
            helper.make_node("Concat", ["negative", "positive"], ["probabilities_double"], axis=1),
        ]
    else:
        nodes.append(helper.make_node("Softmax", ["raw_scores"], ["probabilities_double"], axis=1))
    nodes.append(helper.make_node("Cast", ["probabilities_double"], ["probabilities"], to=TensorProto.FLOAT))
    graph = helper.make_graph(
        nodes,
        "lightgbm",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", num_features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(class_names)])],
    )
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", 3)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="ids-lightning", ir_version=8)
    onnx.helper.set_model_props(model, {CLASS_NAMES_KEY: json.dumps(list(class_names))})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def verify(classifier, path: Path, x: np.ndarray, num_classes: int) -> dict:
    """onnxruntime against LightGBM on ``x``, whole and at batch sizes 1 and 7."""
    ort = session(path)
    expected = probabilities_of(classifier, x, num_classes)
    got = ort.run(None, {"features": x})[0]
    diff = float(np.abs(got - expected).max())
    for batch in (1, 7):
        diff = max(diff, float(np.abs(ort.run(None, {"features": x[:batch]})[0] - expected[:batch]).max()))
    agreement = float((got.argmax(1) == expected.argmax(1)).mean())
    return {
        "onnx/opset": OPSET,
        "onnx/verify_rows": len(x),
        "onnx/max_abs_diff": diff,
        "onnx/argmax_agreement": agreement,
        "onnx/parity_ok": diff <= PARITY_TOLERANCE,
        "onnx/fp32_bytes": path.stat().st_size,
    }


def test_scores(classifier, datamodule) -> dict:
    """The trees' ``test/*`` metrics on the datamodule's test rows, as a deep run reports them
    (the unseen attack types' and benign-vs-attack scores included)."""
    x, y = one_flow_rows(datamodule, "test")
    probabilities = probabilities_of(classifier, x, len(datamodule.class_names))
    return scores(y, probabilities, datamodule.class_names, "test") | unseen_scores_of(
        datamodule, probabilities.argmax(1)
    )


def one_flow_rows(datamodule, stage: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = datamodule.tensors[stage]
    return np.ascontiguousarray(x.numpy(), dtype=np.float32), y.numpy()


def calibrate_folder(folder: Path, datamodule, val_probabilities: np.ndarray, y_val: np.ndarray, fpr: float) -> dict:
    """novelty.json, operating_points.json, explain.json and density.json from training and
    validation rows, as a net's run folder has them."""
    benign = [i for i, name in enumerate(datamodule.class_names) if datamodule.spec.is_benign(name)]
    benign_val = np.isin(y_val, benign)
    if not benign_val.any():
        raise DataError("no benign validation rows to calibrate the operating points on")
    novelty = Novelty.calibrate(val_probabilities[benign_val], fpr)
    novelty.save(folder / "novelty.json")
    operating.save(operating.calibrate(operating.attack_scores(val_probabilities, benign), benign_val), folder)
    x_train, y_train = one_flow_rows(datamodule, "train")
    benign_train = x_train[np.isin(y_train, benign)]
    save_reference(folder, reference_row(datamodule.preprocessor, benign_train), len(benign_train))
    sample = np.random.default_rng(0).permutation(len(benign_train))[:DENSITY_ROWS]
    x_val = one_flow_rows(datamodule, "val")[0]
    density = BenignDensity.fit(benign_train[np.sort(sample)], x_val[benign_val], fpr)
    density.save(folder / DENSITY_FILE)
    return {"novelty/threshold": novelty.threshold, "novelty/fpr": fpr, "density/threshold": density.threshold}


def tuned_run(datamodule, seed: int, folder: Path, search: TreeSearch = TreeSearch(), tags: list[str] = (),
              fpr: float = 0.01, bench_rows: int = 4096) -> dict:  # fmt: skip
    """Tune, fit and export LightGBM on a set-up datamodule's rows into the run folder
    ``folder``; its ``metrics.json`` content (also written)."""
    if datamodule.preprocessor.window != 1:
        raise ConfigError("tuned trees score one flow per sample: set dataset.window=1")
    output_folder(folder)
    setting = {"model": MODEL, "search": asdict(search), "seed": seed, "fpr": fpr, **datamodule.facts()}
    provenance.write(folder, provenance.record(setting, datamodule.data_files(), "cpu (LightGBM)"))
    datamodule.preprocessor.save(folder / "preprocess.json")
    classes = len(datamodule.class_names)
    train, val = one_flow_rows(datamodule, "train"), one_flow_rows(datamodule, "val")
    started = time.perf_counter()
    params, rounds, trials = tune(train, val, classes, seed, search)
    classifier = fit(params, rounds, *train, seed)
    fit_seconds = time.perf_counter() - started
    with atomic_path(folder / "model.onnx") as tmp:
        export_trees(classifier, train[0].shape[1], datamodule.class_names, tmp)
    stamp_provenance(folder / "model.onnx", folder)
    test = one_flow_rows(datamodule, "test")
    metrics = verify(classifier, folder / "model.onnx", test[0][:bench_rows], classes)
    for name, values in (("bench_rows", test[0]), ("bench_labels", test[1])):
        with atomic_path(folder / f"{name}.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, values[:bench_rows])
    val_probabilities = probabilities_of(classifier, val[0], classes)
    metrics |= calibrate_folder(folder, datamodule, val_probabilities, val[1], fpr)
    metrics |= scores(val[1], val_probabilities, datamodule.class_names, "val")
    metrics |= test_scores(classifier, datamodule)
    atomic_write_json(folder / "study.json", {"search": asdict(search), "seed": seed, "trials": trials})
    summary = {
        **dict(sorted(metrics.items())),
        **datamodule.facts(),
        "model": MODEL,
        "params": params,
        "rounds": rounds,
        "seed": seed,
        "tags": list(tags),
        "fit_seconds": round(fit_seconds, 3),
        "val/f1_macro_best": max(trial["val/f1_macro"] for trial in trials),
        **datamodule.stats,
    }
    provenance.finish(folder)
    atomic_write_json(folder / "metrics.json", summary)
    log.info(
        "lightgbm (%d trials) on %s: validation macro-F1 %.4f, test accuracy %.3f, macro-F1 %.3f; run folder %s",
        search.trials, datamodule.name, summary["val/f1_macro"], summary["test/acc"], summary["test/f1_macro"], folder,
    )  # fmt: skip
    return summary


def tuned_trees(overrides: list[str], output_dir: Path | None = None, search: TreeSearch = TreeSearch()) -> dict:
    """:func:`tuned_run` on the rows ``train.py overrides`` would use."""
    output_dir = output_dir or Path("outputs") / "trees" / f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{RUN_ID}"
    cfg = compose(overrides, output_dir)
    datamodule = instantiate(cfg.dataset, output_dir=None)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return tuned_run(datamodule, int(cfg.seed), output_dir, search, list(cfg.get("tags") or []))
