"""Flower's ``ClientApp`` and ``ServerApp`` for the project, and the simulation runner.

Sites build their config from what their own operator gave them (``overrides`` in the
SuperNode's node config, or the simulation's config); from the server they take only weights,
numbers and the merged preprocessing (plain JSON, validated), never a ``_target_``.

``client_app`` and ``server_app`` are what the deployment engine loads (``flower/pyproject.toml``);
:func:`simulate` runs the same work on Flower's simulation engine.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # no usage reports from a research tool

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod
from flwr.clientapp.typing import ClientAppCallable
from flwr.serverapp import Grid, ServerApp
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM
from omegaconf import DictConfig, OmegaConf

from ids_lightning.core.errors import ConfigError
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.federation import server
from ids_lightning.federation.site import Site, site_count
from ids_lightning.training.config import compose
from ids_lightning.training.console import run_summary
from ids_lightning.training.folder import finished_summary, started_run

log = logging.getLogger(__name__)
_SITES: dict[tuple[str, int, int], Site] = {}  # one per site and config, for the process's lifetime


def _clip_when_asked(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Flower's client-side clipping of the update, in runs with differential privacy (the
    server's strategy then sends the clipping norm with the weights)."""
    if KEY_CLIPPING_NORM in msg.content["config"]:
        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


def make_client_app(site_config: Callable[[Context], DictConfig]) -> ClientApp:
    """A ClientApp whose site reads its config from ``site_config(context)``."""
    app = ClientApp()

    def site_of(context: Context) -> Site:
        cfg = site_config(context)
        index, count = int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])
        key = (OmegaConf.to_yaml(cfg), index, count)
        if key not in _SITES:
            _SITES[key] = Site(cfg, index, count)
        return _SITES[key]

    @app.query("statistics")
    def statistics(msg: Message, context: Context) -> Message:
        site = site_of(context)
        content = ConfigRecord({"json": json.dumps(site.statistics()), "site": site.index})
        return Message(RecordDict({"statistics": content}), reply_to=msg)

    @app.train(mods=[_clip_when_asked])
    def train(msg: Message, context: Context) -> Message:
        site = site_of(context)
        config = msg.content["config"]
        site.use(json.loads(config["preprocess"]))
        weights, metrics = site.fit(
            msg.content["arrays"].to_torch_state_dict(),
            int(config["server-round"]),
            int(config["local-epochs"]),
            float(config.get("proximal-mu", 0.0)),
        )
        reply = MetricRecord({"num-examples": site.rows, "site": site.index, **metrics})
        return Message(RecordDict({"arrays": ArrayRecord(weights), "metrics": reply}), reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        site = site_of(context)
        site.use(json.loads(msg.content["config"]["preprocess"]))
        counts = site.confusion(msg.content["arrays"].to_torch_state_dict())
        reply = MetricRecord(
            {"num-examples": int(counts.sum()), "site": site.index, "confusion": counts.ravel().tolist()}
        )
        return Message(RecordDict({"metrics": reply}), reply_to=msg)

    return app


def resolved(cfg: DictConfig) -> DictConfig:
    """The config without Hydra's own node, every interpolation resolved: plain data that a
    Ray actor or another process reads the same way."""
    without_hydra = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    return OmegaConf.create(OmegaConf.to_container(without_hydra, resolve=True))


def _composed(overrides: str, output_dir: str) -> DictConfig:
    return resolved(compose(["experiment=federated", *shlex.split(overrides)], output_dir))


def submitted_overrides(text: str) -> str:
    """The overrides of a run submitted to the SuperLink, which anyone who reaches it can send:
    plain ``key=value`` settings of keys the config has, and choices of its own option files.
    Refused: adding or deleting keys (``+``, ``++``, ``~``), any key part that starts with ``_``
    (``_target_``, ``_partial_``, ...), Hydra's own settings, and interpolations (``${...}``),
    so that nothing submitted chooses what is built, reads the server's environment or writes
    where it likes. Returns ``text`` unchanged when every override passes."""
    try:
        overrides = shlex.split(text)
    except ValueError as err:
        raise ConfigError(f"submitted overrides are not a command line: {err}") from None
    for override in overrides:
        key, equals, value = override.partition("=")
        parts = key.split(".")
        if not equals or key.startswith(("+", "~")) or parts[0] == "hydra":
            raise ConfigError(f"submitted override {override!r} refused: only key=value of existing keys")
        if any(not part.isidentifier() or part.startswith("_") for part in parts):
            raise ConfigError(f"submitted override {override!r} refused: {key!r} is not a plain setting")
        if "${" in value:
            raise ConfigError(f"submitted override {override!r} refused: no interpolations")
    return text


# --- the deployment engine's apps (SuperNodes and the SuperLink load these) ---------------------
client_app = make_client_app(lambda context: _composed(str(context.node_config.get("overrides", "")), "unused"))
server_app = ServerApp()


@server_app.main()
def _deployed_server(grid: Grid, context: Context) -> None:
    """The ServerApp of a deployment: config from the submitted run's ``overrides``, results
    under its ``output-dir``."""
    if not logging.getLogger().handlers:  # a process of Flower's own, without Hydra's logging
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    output_dir = Path(str(context.run_config["output-dir"])).expanduser().resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    cfg = _composed(submitted_overrides(str(context.run_config.get("overrides", ""))), str(output_dir))
    if cfg.federated.partition == "whole" and not cfg.federated.clients:
        raise ConfigError("with federated.partition=whole, say how many sites to wait for: federated.clients=N")
    sites = cfg.federated.clients or site_count(cfg)
    summary = server.run(cfg, grid, output_dir, sites)
    atomic_write_json(output_dir / "metrics.json", summary)


# --- simulation ----------------------------------------------------------------------------------
def train_federated(cfg: DictConfig) -> dict:
    """``experiment=federated``: a run folder like any run's, trained by the sites on Flower's
    simulation engine; ``metrics.json`` is written last."""
    done = finished_summary(cfg, "metrics.json")
    if done is not None:
        return done
    with started_run(cfg) as output_dir:
        summary = simulate(cfg, output_dir)
        atomic_write_json(output_dir / "metrics.json", summary)
        log.info(run_summary(summary, output_dir))
        return summary


def simulate(cfg: DictConfig, output_dir: Path) -> dict:
    """The federated run on Flower's simulation engine: one virtual SuperNode per site, the
    sites' work in Ray actors of ``federated.client_cpus`` cores each."""
    from flwr.simulation import run_simulation

    cfg = resolved(cfg)
    server.check(cfg.federated)
    sites = site_count(cfg)
    summary: dict = {}
    app = ServerApp()

    @app.main()
    def _main(grid: Grid, context: Context) -> None:
        summary.update(server.run(cfg, grid, output_dir, sites))

    cores = os.cpu_count() or 1
    logging.getLogger("flwr").setLevel(logging.WARNING)
    run_simulation(
        server_app=app,
        client_app=make_client_app(lambda context: cfg),
        num_supernodes=sites,
        backend_config={
            "client_resources": {"num_cpus": min(cfg.federated.client_cpus, cores), "num_gpus": 0.0},
            # the sites' errors come back as failed replies, which the server logs
            "init_args": {
                "num_cpus": cores,
                "include_dashboard": False,
                "logging_level": logging.ERROR,
                "log_to_driver": False,
            },
        },
    )
    if not summary:
        raise RuntimeError("the federated simulation ended without a result: see the errors above")
    return summary
