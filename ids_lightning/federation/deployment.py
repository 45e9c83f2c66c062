"""Federated training on Flower's deployment engine: the processes of a real federation, which
``ids federated superlink|supernode|submit`` (:mod:`ids_lightning.cli.federated`) starts.

``overrides`` are the Hydra overrides of ``python train.py experiment=federated ...``: a site's
overrides choose its data (``dataset.files=[...] federated.partition=whole`` at a real site), the
submitted ones the run (strategy, rounds). Sites and server must agree on the dataset, task,
preprocessing options and model. On one machine, ``python train.py experiment=federated`` runs
the same work on the simulation engine instead. See docs/federated.md for TLS and many machines.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from ids_lightning.core.errors import ConfigError

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

# The Flower App that `flwr run` packages: only its manifest; the code is the installed package.
APP_MANIFEST = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "ids-lightning-federated"
version = "1.0.0"
dependencies = []

[tool.flwr.app]
publisher = "ids-lightning"

[tool.flwr.app.components]
serverapp = "ids_lightning.federation.apps:server_app"
clientapp = "ids_lightning.federation.apps:client_app"

[tool.flwr.app.config]
overrides = ""
output-dir = "outputs/federated"
"""
CONNECTION = "ids-lightning"


def flower_command(name: str) -> str:
    """A Flower executable of this environment (its SuperLink starts more of them by name)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise ConfigError(f"{name} not found beside {sys.executable}: install the project with `make install`")
    return str(path)


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def check_binding(host: str, insecure: bool, allow_insecure_remote: bool) -> str | None:
    """Where the SuperLink may listen. Beyond loopback, without TLS and site authentication,
    anyone who reaches it can join as a site or submit runs: that needs ``--secure``, or
    ``--allow-insecure-remote`` for a closed lab network, and then a warning is returned."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback or not insecure:
        return None
    if not allow_insecure_remote:
        raise ConfigError(
            f"--host {host} reaches beyond this machine without TLS or site authentication: add --secure "
            "(with Flower's certificate options in $FLOWER_ARGS), or --allow-insecure-remote on a closed lab network"
        )
    return f"warning: the SuperLink listens on {host} without TLS or site authentication (--allow-insecure-remote)"


def superlink(port: int, insecure: bool, host: str = "127.0.0.1") -> list[str]:
    # apps need no install at runtime: the sites and the server run this environment
    command = [flower_command("flower-superlink"), "--host", host, "--port", str(port)]
    command.append("--disable-runtime-dependency-installation")
    return [*command, "--insecure"] if insecure else command


def supernode(
    superlink_address: str, site: int, sites: int, port: int, overrides: list[str], insecure: bool
) -> list[str]:
    node_config = f"partition-id={site} num-partitions={sites} overrides={_toml_string(shlex.join(overrides))}"
    command = [
        flower_command("flower-supernode"),
        "--superlink", superlink_address, "--port", str(port), "--node-config", node_config,
    ]  # fmt: skip
    return [*command, "--insecure"] if insecure else command


def submit(
    superlink_address: str, output_dir: Path, overrides: list[str], insecure: bool, root_certificates: Path | None
) -> int:
    """``flwr run`` of the project's app against the SuperLink; returns its exit status. The
    connection lives in a private Flower home, so a user's ``~/.flwr`` is left alone."""
    with tempfile.TemporaryDirectory(prefix="ids-flower-") as tmp:
        home, app = Path(tmp) / "home", Path(tmp) / "app"
        home.mkdir()
        app.mkdir()
        (app / "pyproject.toml").write_text(APP_MANIFEST)
        connection = f"address = {_toml_string(superlink_address)}\ninsecure = {str(insecure).lower()}\n"
        if root_certificates is not None:
            connection += f"root-certificates = {_toml_string(str(root_certificates.resolve()))}\n"
        connections = f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n{connection}'
        (home / "config.toml").write_text(connections)
        run_config = (
            f"overrides={_toml_string(shlex.join(overrides))} output-dir={_toml_string(str(output_dir.resolve()))}"
        )
        command = [flower_command("flwr"), "run", str(app), CONNECTION, "--stream", "--run-config", run_config]
        result = subprocess.run(command, env={**environment(), "FLWR_HOME": str(home)}, check=False)
    if result.returncode == 0 and not (output_dir / "metrics.json").is_file():
        print(f"the run ended without {output_dir / 'metrics.json'}: see the SuperLink's log", file=sys.stderr)
        return 1
    return result.returncode


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
