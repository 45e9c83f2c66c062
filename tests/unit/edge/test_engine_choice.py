"""The edge bench names the model a machine should run from what it just measured."""

from __future__ import annotations

import pytest

from ids_lightning.edge.latency import engine_choice


def row(engine: str, threads: int, p50: float, rows_per_s: int) -> dict:
    return {"engine": engine, "threads": threads, "batch1_p50_us": p50, "rows_per_s": {"1": 1, "1024": rows_per_s}}


def measured(int8_p50: float, int8_rows: int, accuracy: tuple[float, float] | None = None) -> list[dict]:
    rows = [row("onnx_fp32", 1, 100.0, 10_000), row("onnx_int8", 1, int8_p50, int8_rows)]
    for r, value in zip(rows, accuracy or (None, None)):
        r["accuracy"] = value
    return rows


@pytest.mark.parametrize(
    ("int8_p50", "int8_rows", "accuracy", "chosen"),
    [
        (50.0, 30_000, None, "model.int8.onnx"),  # twice as fast at both
        (85.0, 14_000, None, "model.onnx"),  # 1.18x at batch 1: inside the margin
        (50.0, 11_000, None, "model.onnx"),  # faster at batch 1 only
        (140.0, 8_000, None, "model.onnx"),  # slower (this x86 box, issue 33)
        (50.0, 30_000, (0.80, 0.79), "model.onnx"),  # a point of accuracy lost
        (50.0, 30_000, (0.80, 0.798), "model.int8.onnx"),  # within half a point
    ],
)
def test_int8_is_chosen_only_where_it_is_clearly_faster_at_both_ends_and_as_accurate(
    int8_p50, int8_rows, accuracy, chosen
):
    choice = engine_choice(measured(int8_p50, int8_rows, accuracy))
    assert choice["model"] == chosen
    assert "1 thread(s): int8 is" in choice["why"]


def test_int8_must_win_at_every_thread_count_measured():
    more_threads = [row("onnx_fp32", 4, 100.0, 40_000), row("onnx_int8", 4, 120.0, 30_000)]
    for r in more_threads:
        r["accuracy"] = None
    rows = [*measured(50.0, 30_000), *more_threads]
    assert engine_choice(rows)["model"] == "model.onnx"


def test_a_folder_without_an_int8_model_runs_fp32():
    only_fp32 = [dict(row("onnx_fp32", 1, 100.0, 10_000), accuracy=None)]
    assert engine_choice(only_fp32) == {"model": "model.onnx", "why": "no int8 model measured"}
