"""The server side of federated training (a Flower ``ServerApp``'s work): merge the sites'
statistics into one preprocessing, run the strategy's rounds, choose the global model of the
round with the best federated validation macro-F1 (confusion counts summed over the sites, so
the figure is that of the union of their validation rows), then test, export and report it
like any run.

The test rows never choose anything: the per-round test curve is drawn for the report only.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import OrderedDict
from pathlib import Path

import lightning as L
import matplotlib.pyplot as plt
import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    Krum,
)
from omegaconf import DictConfig

from ids_lightning.core import provenance
from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.fileio import atomic_path, atomic_write_json
from ids_lightning.core.metrics import macro_scores
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.data import FlowDataModule
from ids_lightning.federation.site import ATTACKS, STRATEGIES, Site, confusion
from ids_lightning.models.module import IDSLitModule
from ids_lightning.training.callbacks.run_report import RunReport
from ids_lightning.training.config import config_choice, instantiate, model_from_config
from ids_lightning.training.export import ExportOptions, ProbabilityHead, export_options, export_run
from ids_lightning.training.folder import comparable_config

log = logging.getLogger(__name__)
QUERY_STATISTICS = "query.statistics"
SITE_WAIT_SECONDS = 600


def check(fed: DictConfig) -> None:
    """Refuse federated settings that cannot run."""
    if fed.strategy not in STRATEGIES:
        raise ConfigError(f"federated.strategy must be one of {STRATEGIES}, not {fed.strategy!r}")
    if fed.attack not in ATTACKS:
        raise ConfigError(f"federated.attack must be one of {ATTACKS}, not {fed.attack!r}")
    if fed.rounds < 1 or fed.local_epochs < 1:
        raise ConfigError("federated.rounds and federated.local_epochs must be at least 1")
    if not 0 < fed.fraction <= 1:
        raise ConfigError(f"federated.fraction must lie in (0, 1], not {fed.fraction}")
    if fed.dp_clipping_norm is not None and (fed.strategy not in ("fedavg", "fedprox") or fed.dp_clipping_norm <= 0):
        raise ConfigError(
            "federated.dp_clipping_norm (differential privacy) must be positive and calibrates noise to an "
            f"average: use it with fedavg or fedprox, not {fed.strategy}"
        )
    if fed.mu and fed.strategy != "fedprox":
        raise ConfigError("federated.mu is FedProx's proximal weight: set federated.strategy=fedprox")


def payload_bytes(content: RecordDict) -> int:
    """Bytes of the weights and strings a message carries (transport framing not counted)."""
    total = 0
    for record in content.values():
        if isinstance(record, ArrayRecord):
            total += sum(len(array.data) for array in record.values())
        elif isinstance(record, ConfigRecord):
            total += sum(len(v.encode()) if isinstance(v, str) else 8 for v in record.values())
        elif isinstance(record, MetricRecord):
            total += sum(8 * len(v) if isinstance(v, list) else 8 for v in record.values())
    return total


class RoundLog:
    """Per round: each site's training loss and validation scores, the global validation scores
    from the summed confusion counts, the test curve, payload bytes and time; the best state."""

    def __init__(self, test: tuple, model: IDSLitModule, batch_size: int):
        self.rounds: dict[int, dict] = {}
        self.sites: dict[int, int] = {}  # node id -> site index
        self.test, self.model, self.batch_size = test, model, batch_size
        self.best: tuple[int, float, OrderedDict] | None = None
        self.previous: OrderedDict | None = None
        self.started = time.perf_counter()

    def _round(self, number: int) -> dict:
        return self.rounds.setdefault(number, {"round": number, "sent_bytes": 0, "received_bytes": 0, "sites": {}})

    def sent(self, number: int, messages: list[Message]) -> list[Message]:
        """Count the bytes of round ``number``'s ``messages``; they go on as they are."""
        self._round(number)["sent_bytes"] += sum(payload_bytes(m.content) for m in messages)
        return messages

    def received(self, number: int, replies: list[Message], stage: str) -> list[Message]:
        """Record round ``number``'s ``replies`` (bytes, the sites' metrics, failures); they go
        on as they are."""
        row = self._round(number)
        for reply in replies:
            if reply.has_error():
                node = reply.metadata.src_node_id
                log.warning("round %d: the site on node %s failed: %s", number, node, reply.error.reason)
                continue
            row["received_bytes"] += payload_bytes(reply.content)
            metrics = reply.content["metrics"]
            site = row["sites"].setdefault(str(int(metrics["site"])), {})
            if stage == "train":
                site.update(train_rows=int(metrics["num-examples"]), train_loss=float(metrics["train_loss"]))
            else:
                counts = np.asarray(metrics["confusion"], dtype=np.int64)
                site["val_confusion"] = counts.tolist()
                site.update({f"val_{k}": v for k, v in _scores(counts).items()})
        if stage == "evaluate":
            confusions = [np.asarray(s["val_confusion"]) for s in row["sites"].values() if "val_confusion" in s]
            if confusions:
                row.update({f"val_{k}": v for k, v in _scores(np.sum(confusions, axis=0)).items()})
        return replies

    def evaluate(self, number: int, arrays: ArrayRecord) -> MetricRecord | None:
        """Called by the strategy after each round: keep the state if its federated validation
        macro-F1 is the best yet; draw the test curve point (never used to choose)."""
        state = arrays.to_torch_state_dict()
        self.model.net.load_state_dict(state)
        test = _scores(confusion(self.model, *self.test, self.batch_size).ravel())
        row = self._round(number)
        row.update({f"test_{k}": v for k, v in test.items()}, seconds=time.perf_counter() - self.started)
        if self.previous is not None:  # how far the round moved the global model (L2 over all weights)
            moved = sum(float((state[k].double() - self.previous[k].double()).pow(2).sum()) for k in state)
            row["update_norm"] = math.sqrt(moved)
        self.previous = OrderedDict((k, v.clone()) for k, v in state.items())
        f1 = row.get("val_f1_macro")
        if number > 0 and f1 is not None and (self.best is None or f1 > self.best[1]):
            self.best = (number, f1, OrderedDict((k, v.clone()) for k, v in state.items()))
        if number > 0:
            log.info(
                "round %3d: val acc %.4f macro-F1 %.4f (all sites)  test acc %.4f  %.1f MB out, %.1f MB in  %.0f s%s",
                number, row.get("val_acc", float("nan")), f1 if f1 is not None else float("nan"), test["acc"],
                row["sent_bytes"] / 1e6, row["received_bytes"] / 1e6, row["seconds"],
                "  * new best" if self.best is not None and self.best[0] == number else "",
            )  # fmt: skip
        return MetricRecord({f"test_{k}": v for k, v in test.items()})

    def history(self) -> list[dict]:
        """Rounds as the LightningModule's epoch history (for the run report's curves)."""
        return [
            {"epoch": r["round"] - 1, "train/loss": _mean([s.get("train_loss") for s in r["sites"].values()]),
             "val/acc": r.get("val_acc"), "val/f1_macro": r.get("val_f1_macro")}
            for r in self.ordered() if r["round"] > 0
        ]  # fmt: skip

    def ordered(self) -> list[dict]:
        return [self.rounds[k] for k in sorted(self.rounds)]


def _scores(flat_confusion: np.ndarray) -> dict[str, float]:
    classes = math.isqrt(flat_confusion.size)
    scores = macro_scores(np.asarray(flat_confusion).reshape(classes, classes))
    return {"acc": scores["acc"], "f1_macro": scores["f1_macro"]}


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _recording(strategy_class: type, rounds: RoundLog) -> type:
    """``strategy_class`` whose messages and replies also go to ``rounds``."""

    class Recorded(strategy_class):
        def configure_train(self, server_round, arrays, config, grid):
            return rounds.sent(server_round, list(super().configure_train(server_round, arrays, config, grid)))

        def aggregate_train(self, server_round, replies):
            return super().aggregate_train(server_round, rounds.received(server_round, list(replies), "train"))

        def configure_evaluate(self, server_round, arrays, config, grid):
            return rounds.sent(server_round, list(super().configure_evaluate(server_round, arrays, config, grid)))

        def aggregate_evaluate(self, server_round, replies):
            return super().aggregate_evaluate(server_round, rounds.received(server_round, list(replies), "evaluate"))

    Recorded.__name__ = strategy_class.__name__
    return Recorded


def _no_metrics(contents: list[RecordDict], weighted_by_key: str) -> MetricRecord:
    return MetricRecord()  # the round log keeps every site's own figures instead


def strategy(fed: DictConfig, sites: int, rounds: RoundLog):
    """The configured Flower strategy, sampling ``fraction`` of the sites each round."""
    classes = {
        "fedavg": FedAvg, "fedprox": FedProx, "fedmedian": FedMedian, "fedtrimmedavg": FedTrimmedAvg, "krum": Krum,
    }  # fmt: skip
    sampled = max(1, int(sites * fed.fraction))
    common = {
        "fraction_train": fed.fraction,
        "fraction_evaluate": 1.0,
        "min_train_nodes": sampled,
        "min_evaluate_nodes": sites,
        "min_available_nodes": sites,
        "train_metrics_aggr_fn": _no_metrics,
        "evaluate_metrics_aggr_fn": _no_metrics,
    }
    extra = {
        "fedprox": {"proximal_mu": float(fed.mu)},
        "fedtrimmedavg": {"beta": float(fed.trim)},
        "krum": {"num_malicious_nodes": int(fed.malicious)},
    }.get(fed.strategy, {})
    chosen = _recording(classes[fed.strategy], rounds)(**common, **extra)
    if fed.dp_clipping_norm is None:
        return chosen
    return DifferentialPrivacyClientSideFixedClipping(
        chosen, float(fed.dp_noise_multiplier), float(fed.dp_clipping_norm), num_sampled_clients=sampled
    )


def dp_facts(fed: DictConfig, sites: int) -> dict:
    """What differential privacy did, for ``metrics.json``: the clipping norm, the noise
    multiplier and the standard deviation of the Gaussian noise added to each round's average
    (no privacy budget: accounting needs equal site weights and Google's dp-accounting)."""
    if fed.dp_clipping_norm is None:
        return {}
    sampled = max(1, int(sites * fed.fraction))
    return {
        "federated/dp_clipping_norm": float(fed.dp_clipping_norm),
        "federated/dp_noise_multiplier": float(fed.dp_noise_multiplier),
        "federated/dp_noise_std": float(fed.dp_noise_multiplier) * float(fed.dp_clipping_norm) / sampled,
    }


def wait_for_sites(grid: Grid, sites: int) -> list[int]:
    deadline = time.monotonic() + SITE_WAIT_SECONDS
    while len(nodes := sorted(grid.get_node_ids())) < sites:
        if time.monotonic() > deadline:
            raise DataError(f"only {len(nodes)} of {sites} sites connected in {SITE_WAIT_SECONDS} s")
        time.sleep(0.5)
    return nodes


def merged_preprocessing(cfg: DictConfig, grid: Grid, nodes: list[int], class_names: list[str]) -> Preprocessor:
    """Ask every site for its statistics and merge them (no row leaves a site)."""
    query = [
        Message(RecordDict({"config": ConfigRecord({"scaler": cfg.dataset.scaler})}), dst_node_id=n,
                message_type=QUERY_STATISTICS)
        for n in nodes
    ]  # fmt: skip
    replies = list(grid.send_and_receive(query))
    failed = [r.error.reason for r in replies if r.has_error()]
    if failed or len(replies) != len(nodes):
        raise DataError(f"{len(failed) or len(nodes) - len(replies)} sites did not send statistics: {failed}")
    statistics = [json.loads(r.content["statistics"]["json"]) for r in replies]
    dataset = cfg.dataset
    return Preprocessor.merge(
        statistics, dataset=dataset.spec, task=dataset.task, class_names=class_names, encoding=dataset.categorical,
        scaler=dataset.scaler, clip=dataset.clip, window=dataset.window,
    )  # fmt: skip


def run(cfg: DictConfig, grid: Grid, output_dir: Path, sites: int) -> dict:
    """The whole federated run on ``grid`` with ``sites`` sites; writes the run folder and
    returns what ``metrics.json`` holds (the caller writes it)."""
    fed = cfg.federated
    check(fed)
    logging.getLogger("flwr").setLevel(logging.WARNING)  # one line per round of ours instead
    random.seed(cfg.seed)  # the strategies sample sites with the random module
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    nodes = wait_for_sites(grid, sites)
    datamodule: FlowDataModule = instantiate(cfg.dataset, output_dir=None)
    tables, class_names = datamodule.load_splits()
    preprocessor = merged_preprocessing(cfg, grid, nodes, class_names)
    preprocessor.save(output_dir / "preprocess.json")
    datamodule.build({"test": tables["test"]}, class_names, preprocessor)
    # the data the server read; each site's own files stay at the site
    made = provenance.record(comparable_config(cfg), datamodule.data_files(), "federated server", sites=sites)
    provenance.write(output_dir, made)
    model = model_from_config(cfg, preprocessor)
    log.info(
        "federated %s: %d sites, %d rounds of %d local epochs, %s of the sites per round",
        fed.strategy, sites, fed.rounds, fed.local_epochs, fed.fraction,
    )  # fmt: skip
    rounds = RoundLog(datamodule.tensors["test"], model, datamodule.options.loader.eval_batch_size)
    state = json.dumps(preprocessor.to_dict())
    result_started = time.perf_counter()
    strategy(fed, sites, rounds).start(
        grid=grid,
        initial_arrays=ArrayRecord(model.net.state_dict()),
        num_rounds=fed.rounds,
        train_config=ConfigRecord({"preprocess": state, "local-epochs": int(fed.local_epochs)}),
        evaluate_config=ConfigRecord({"preprocess": state}),
        evaluate_fn=rounds.evaluate,
    )
    fit_seconds = time.perf_counter() - result_started
    if rounds.best is None:
        raise DataError("no round returned validation counts from the sites: nothing to choose a model by")
    best_round, best_f1, best_state = rounds.best
    model.net.load_state_dict(best_state)
    with atomic_path(output_dir / "checkpoints" / "global_best.pt") as tmp:
        torch.save(best_state, tmp)
    model.history = rounds.history()
    summary = _report(cfg, output_dir, datamodule, model, rounds, best_round, best_f1, fit_seconds, sites)
    if fed.local_only:
        alone = local_only(
            cfg, sites, preprocessor, datamodule.tensors["test"], datamodule.options.loader.eval_batch_size
        )
        record = json.loads((output_dir / "federated.json").read_text())
        atomic_write_json(output_dir / "federated.json", {**record, "local_only": alone})
        for key in ("acc", "f1_macro"):
            summary[f"local_only/test/{key}_mean"] = float(np.mean([site[f"test_{key}"] for site in alone]))
            summary[f"local_only/test/{key}_best"] = float(max(site[f"test_{key}"] for site in alone))
    provenance.finish(output_dir)
    return summary


def _report(cfg, output_dir, datamodule, model, rounds, best_round, best_f1, fit_seconds, sites) -> dict:
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=[RunReport(str(output_dir))], logger=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=str(output_dir),
    )  # fmt: skip
    trainer.test(model, datamodule=datamodule, verbose=False)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    options = export_options(cfg.get("export")) or ExportOptions()
    options.quantize = False  # int8 calibration would need rows that stay at the sites
    onnx = export_run(
        ProbabilityHead(model.net.eval(), model.binary).eval(),
        {"test": tuple(t.cpu() for t in datamodule.tensors["test"])},
        output_dir,
        model.class_names,
        options,
    )
    ordered = rounds.ordered()
    record = {
        "strategy": cfg.federated.strategy,
        "sites": sites,
        "best_round": best_round,
        "selected_by": "federated validation macro-F1 (confusion counts summed over the sites)",
        "rounds": ordered,
    }
    atomic_write_json(output_dir / "federated.json", record)
    figure = federated_figure(ordered, best_round)
    with atomic_path(output_dir / "federated.png") as tmp:
        figure.savefig(tmp, dpi=110)
    plt.close(figure)
    sent = sum(r["sent_bytes"] for r in ordered)
    received = sum(r["received_bytes"] for r in ordered)
    target = cfg.federated.target_val_acc
    reached = [r["round"] for r in ordered if r["round"] > 0 and r.get("val_acc", 0) >= target]
    return {
        **metrics,
        "val/f1_macro_best": best_f1,
        **datamodule.facts(),
        "model": config_choice("model", default=cfg.model.net._target_.rsplit(".", 1)[-1]),
        "seed": cfg.seed,
        "tags": list(cfg.get("tags") or []),
        "epochs_run": cfg.federated.rounds,
        "best_epoch": best_round - 1,
        "fit_seconds": fit_seconds,
        "n_params": sum(p.numel() for p in model.net.parameters()),
        "federated/strategy": cfg.federated.strategy,
        "federated/sites": sites,
        "federated/rounds": cfg.federated.rounds,
        "federated/best_round": best_round,
        "federated/sent_bytes": sent,
        "federated/received_bytes": received,
        "federated/target_val_acc": target,
        "federated/rounds_to_target": reached[0] if reached else None,
        **dp_facts(cfg.federated, sites),
        **onnx,
    }


def federated_figure(rounds: list[dict], best_round: int):
    """Accuracy and macro-F1 per round: global validation (summed counts), each site's own
    validation, and the test curve (drawn, never used to choose)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    numbers = [r["round"] for r in rounds if r["round"] > 0]
    sites = sorted({s for r in rounds for s in r["sites"]}, key=int)
    for ax, metric, title in zip(axes, ("acc", "f1_macro"), ("accuracy", "macro-F1")):
        for site in sites:
            values = [r["sites"].get(site, {}).get(f"val_{metric}") for r in rounds if r["round"] > 0]
            ax.plot(numbers, values, color="0.7", linewidth=0.8, label="each site (val)" if site == sites[0] else None)
        ax.plot(numbers, [r.get(f"val_{metric}") for r in rounds if r["round"] > 0], "o-", color="tab:blue",
                markersize=3, label="global (val, all sites)")  # fmt: skip
        ax.plot(numbers, [r.get(f"test_{metric}") for r in rounds if r["round"] > 0], "s--", color="tab:orange",
                markersize=3, label="global (test)")  # fmt: skip
        ax.axvline(best_round, color="tab:green", linestyle=":", label=f"chosen round ({best_round})")
        ax.set_xlabel("round")
        ax.set_ylabel(title)
        ax.set_title(f"Federated {title} per round")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def local_only(cfg: DictConfig, sites: int, preprocessor: Preprocessor, test: tuple, batch_size: int) -> list[dict]:
    """Each site trained alone for as many epochs as the federated run trained it (rounds x
    local epochs), choosing its epoch by its own validation macro-F1, tested on the shared test
    rows: the "local-only" row of the report."""
    results = []
    state = preprocessor.to_dict()
    for index in range(sites):
        site = Site(cfg, index, sites)
        site.use(state)
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        weights = OrderedDict((k, v.clone()) for k, v in site.model.net.state_dict().items())
        best: tuple[float, OrderedDict] | None = None
        for epoch in range(cfg.federated.rounds * cfg.federated.local_epochs):
            weights, _ = site.fit(weights, epoch + 1, 1, 0.0)
            f1 = _scores(site.confusion(weights).ravel())["f1_macro"] if len(site.tables["val"]) else 0.0
            if best is None or f1 > best[0]:
                best = (f1, weights)
        site.model.net.load_state_dict(best[1])
        scores = _scores(confusion(site.model, *test, batch_size).ravel())
        results.append({"site": index, "train_rows": site.rows, "val_f1_macro": best[0],
                        **{f"test_{k}": v for k, v in scores.items()}})  # fmt: skip
        log.info("local-only site %d (%d rows): test acc %.4f, macro-F1 %.4f", index, site.rows,
                 scores["acc"], scores["f1_macro"])  # fmt: skip
    return results
