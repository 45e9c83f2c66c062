"""The in-memory training path: same maths as a hand-written loop, on CPU and (graph) on CUDA."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from ids_lightning.bench.train import bare_trainer
from ids_lightning.core.windows import padded_table, pointing_at_pad, window_index, windowed
from ids_lightning.models import CNNLSTM, IDSLitModule
from ids_lightning.models.batches import InMemoryBatches, WindowedFeatures
from tests.helpers import run_if

cuda = run_if(cuda=True)


def toy_data(n=300, features=12, classes=3, device="cpu"):
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(n, features, generator=generator)
    y = (x[:, 0] * classes).long().clamp(max=classes - 1)
    return x.to(device), y.to(device)


def hand_loop(net, x, y, batch_size, seed, epochs, lr=1e-3, **adam):
    """The reference: a plain PyTorch loop over the same seeded permutation."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, **adam)
    for epoch in range(epochs):
        generator = torch.Generator(device=x.device).manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(len(x), generator=generator, device=x.device)
        loss_sum = 0.0
        for start in range(0, len(x), batch_size):
            index = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x[index]), y[index])
            loss.backward()
            optimizer.step()
            loss_sum += float(loss) * len(index)
    return net, loss_sum / len(x)


def toy_windows(window=4, device="cpu"):
    """Toy flows of 5 interleaved hosts as windowed samples: gathered (the fast path) and
    materialised (the reference)."""
    x, y = toy_data()
    groups = torch.Generator().manual_seed(1)
    windows = window_index(torch.randint(0, 5, (len(x),), generator=groups).numpy(), window)
    gathered = WindowedFeatures(
        torch.from_numpy(padded_table(x.numpy())), torch.from_numpy(pointing_at_pad(windows, len(x)).astype("int32"))
    )
    materialised = torch.from_numpy(windowed(x.numpy(), windows)[:])
    return gathered.to(device), materialised.to(device), y.to(device)


def fit_module(net, x, y, batch_size, seed, epochs, cuda_graph=False, accelerator="cpu", **module_options):
    module = IDSLitModule(
        net, optimizer=torch.optim.Adam, class_names=["a", "b", "c"], cuda_graph=cuda_graph, **module_options
    )
    trainer = bare_trainer(max_epochs=epochs, accelerator=accelerator)
    holder = {"trainer": trainer}
    batches = InMemoryBatches(
        x,
        y,
        batch_size,
        shuffle=True,
        seed=seed,
        epoch=lambda: holder["trainer"].current_epoch,
        steps_per_chunk=4,
    )
    trainer.fit(module, train_dataloaders=batches)
    return module, trainer


def test_chunked_steps_match_a_hand_written_loop():
    x, y = toy_data()
    torch.manual_seed(0)
    net = CNNLSTM(12, 3, dropout=0.0)
    reference, last_epoch_loss = hand_loop(copy.deepcopy(net), x, y, batch_size=32, seed=5, epochs=2)
    module, trainer = fit_module(net, x, y, batch_size=32, seed=5, epochs=2)
    assert trainer.global_step == 2 * 10  # every optimizer step counted, not every chunk
    for got, want in zip(module.net.parameters(), reference.parameters()):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert float(trainer.callback_metrics["train/loss"]) == pytest.approx(last_epoch_loss, rel=1e-5)


def test_windowed_chunked_steps_match_a_hand_written_loop_over_materialised_windows():
    gathered, materialised, y = toy_windows()
    torch.manual_seed(0)
    net = CNNLSTM(12, 3, dropout=0.0, window=4)
    reference, last_epoch_loss = hand_loop(copy.deepcopy(net), materialised, y, batch_size=32, seed=5, epochs=2)
    module, trainer = fit_module(net, gathered, y, batch_size=32, seed=5, epochs=2)
    for got, want in zip(module.net.parameters(), reference.parameters()):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert float(trainer.callback_metrics["train/loss"]) == pytest.approx(last_epoch_loss, rel=1e-5)


@cuda
def test_windowed_cuda_graph_steps_match_eager_steps():
    gathered, _, y = toy_windows(device="cuda")
    torch.manual_seed(0)
    net = CNNLSTM(12, 3, dropout=0.0, window=4).cuda()
    eager, _ = fit_module(copy.deepcopy(net), gathered, y, 32, seed=3, epochs=2, accelerator="gpu")
    graph, _ = fit_module(net, gathered, y, 32, seed=3, epochs=2, cuda_graph=True, accelerator="gpu")
    assert graph._graphs
    for got, want in zip(graph.net.parameters(), eager.net.parameters()):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@cuda
def test_cuda_graph_steps_match_eager_steps():
    x, y = toy_data(n=333, device="cuda")  # 333 = 10 full batches of 32 and a short one
    torch.manual_seed(0)
    net = CNNLSTM(12, 3, dropout=0.0).cuda()
    eager, _ = fit_module(copy.deepcopy(net), x, y, 32, seed=3, epochs=2, accelerator="gpu")
    graph, trainer = fit_module(net, x, y, 32, seed=3, epochs=2, cuda_graph=True, accelerator="gpu")
    assert graph._graphs and trainer.global_step == 2 * 11
    for got, want in zip(graph.net.parameters(), eager.net.parameters()):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        trainer.callback_metrics["train/loss"].cpu(), _loss_of(eager).cpu(), rtol=1e-4, atol=1e-5
    )


@cuda
@pytest.mark.parametrize(
    "options",
    [{"graph_steps": 2}, {"adversarial": {"method": "fgsm", "eps": 0.1, "ratio": 0.5}}],
    ids=["two_steps_per_replay", "fgsm_training"],
)
def test_cuda_graph_variants_match_eager_steps(options):
    """Several steps per replay, and adversarial training captured in the graph: the weights of
    eager training (chunks of 4 steps: two replays of two, or the attack inside each step)."""
    x, y = toy_data(n=333, device="cuda")
    torch.manual_seed(0)
    net = CNNLSTM(12, 3, dropout=0.0).cuda()
    eager, _ = fit_module(copy.deepcopy(net), x, y, 32, seed=3, epochs=2, accelerator="gpu", **options)
    graph, trainer = fit_module(net, x, y, 32, seed=3, epochs=2, cuda_graph=True, accelerator="gpu", **options)
    assert graph._graphs and trainer.global_step == 2 * 11
    for got, want in zip(graph.net.parameters(), eager.net.parameters()):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@cuda
def test_batched_seeds_in_one_cuda_graph_match_eager_batched_seeds(tmp_path, data_dir):
    """The seeds' streams inside one graph compute what they compute eagerly (dropout off)."""
    from ids_lightning.training.config import compose
    from ids_lightning.training.run import train

    common = ["debug=limit", "trainer=gpu", "seeds=[1,2]", "model.net.dropout=0", "logger=none"]
    histories = {}
    for graph in (False, True):
        folder = tmp_path / f"graph_{graph}"
        train(compose([*common, f"model.cuda_graph={graph}"], folder, data_dir=data_dir))
        histories[graph] = [json.loads((folder / f"seed_{s}" / "fit.json").read_text())["history"] for s in (1, 2)]
    for eager_rows, graph_rows in zip(histories[False], histories[True]):
        for want, got in zip(eager_rows, graph_rows, strict=True):
            assert got["train/loss"] == pytest.approx(want["train/loss"], rel=1e-3)
            assert got["val/acc"] == pytest.approx(want["val/acc"], abs=2e-3)


def _loss_of(module):
    return module.trainer.callback_metrics["train/loss"]


@cuda
def test_cuda_graph_run_on_real_data_checkpoints_and_tests(make_config, tmp_path):
    from ids_lightning.training.run import train

    metrics = train(make_config("debug=limit", "trainer=gpu", "model.cuda_graph=true", "logger=none"))
    assert metrics["epochs_run"] == 3 and metrics["test/acc"] > 0.3
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert checkpoint["global_step"] == 3 * 5 * 16
    assert any("exp_avg" in s for s in checkpoint["optimizer_states"][0]["state"].values())
