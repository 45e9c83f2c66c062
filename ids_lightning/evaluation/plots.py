"""Figures people would rather look at than read: confusion matrix, ROC and precision-recall curves,
learning curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def confusion_matrix_figure(confusion: list[list[int]], class_names: list[str]) -> Figure:
    """Row-normalised colours (recall per true class) with the raw counts written in."""
    counts = np.asarray(confusion, dtype=np.int64)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.6 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="share of true class")
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(class_names) <= 25:
        for i, j in np.ndindex(counts.shape):
            colour = "white" if rates[i, j] > 0.5 else "black"
            ax.text(j, i, f"{counts[i, j]}", ha="center", va="center", color=colour, fontsize=8)
    ax.set_title("Confusion matrix (test)")
    fig.tight_layout()
    return fig


def roc_figure(roc: dict[str, dict[str, list[float]]], title: str = "ROC (test, one-vs-rest)") -> Figure:
    """One curve per class; the legend's AUC is the area under the drawn (thinned) curve, which
    can differ in the third decimal from ``test/auroc`` (exact, macro over present classes)."""
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, curve in roc.items():
        fpr, tpr = np.asarray(curve["fpr"]), np.asarray(curve["tpr"])
        ax.plot(fpr, tpr, label=f"{name} (area of curve {np.trapezoid(tpr, fpr):.3f})")
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8, title="exact macro AUC: test/auroc in metrics.json", title_fontsize=7)
    fig.tight_layout()
    return fig


def precision_recall_figure(curves: dict[str, dict[str, list[float]]]) -> Figure:
    """One precision-recall curve per class, its average precision (exact, from all test rows)
    in the legend, and each class's share of the test rows as the chance level: with 30
    malicious flows among thousands, this is the curve that shows what an alarm is worth."""
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, curve in curves.items():
        label = f"{name} (AP {curve['ap']:.3f})"
        (line,) = ax.plot(curve["recall"], curve["precision"], drawstyle="steps-post", label=label)
        if "share" in curve:
            ax.axhline(curve["share"], color=line.get_color(), linestyle=":", linewidth=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall (test, one-vs-rest)")
    ax.legend(loc="lower left", fontsize=8, title="dotted: the class's share of test rows", title_fontsize=7)
    fig.tight_layout()
    return fig


def learning_curves_figure(
    history: list[dict[str, float | None]], best_epoch: int | None = None, stopped_epoch: int | None = None
) -> Figure:
    """Train/validation accuracy and loss per epoch (the seed paper's figures 2-5), with the best
    epoch by validation macro-F1 (the checkpoint that is tested) and an early stop marked.
    Epochs are counted from 1, as the console counts them (history and checkpoints from 0)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    best = None if best_epoch is None else best_epoch + 1
    for ax, metric in zip(axes, ("acc", "loss")):
        for stage, style in (("train", "-"), ("val", "--")):
            points = [(h["epoch"] + 1, h.get(f"{stage}/{metric}")) for h in history]
            points = [(e, v) for e, v in points if v is not None]
            if points:
                ax.plot(*zip(*points), style, marker="o", markersize=3, label=stage)
        if best is not None:
            ax.axvline(best, color="tab:green", linestyle=":", label=f"best epoch ({best})")
        if stopped_epoch:
            ax.axvline(stopped_epoch + 1, color="tab:red", linestyle="-.", label=f"early stop ({stopped_epoch + 1})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if metric == "acc" else "loss")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_title("Accuracy per epoch")
    axes[1].set_title("Loss per epoch")
    fig.tight_layout()
    return fig


def importance_figure(importance: dict, top: int = 10) -> Figure:
    """Per class, the features with the largest mean contribution to that class's probability
    over its test rows (``importance.json``), one panel per class."""
    classes = [c for c in importance["classes"] if importance["classes"][c]["rows"]]
    fig, axes = plt.subplots(1, max(len(classes), 1), figsize=(3.6 * max(len(classes), 1), 0.35 * top + 1.4))
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, classes):
        entry = importance["classes"][name]
        ranked = sorted(entry["mean_contribution"].items(), key=lambda kv: -abs(kv[1]))[:top][::-1]
        values = [v for _, v in ranked]
        ax.barh([k for k, _ in ranked], values, color=["#c0392b" if v > 0 else "#2874a6" for v in values])
        ax.axvline(0, color="black", linewidth=0.6)
        ax.set_title(f"{name} ({entry['rows']} rows)", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(3))
    for ax in axes[len(classes) :]:
        ax.axis("off")
    fig.suptitle("mean contribution to the class's probability (test rows, occlusion against a benign reference)",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    return fig
