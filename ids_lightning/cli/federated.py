"""``ids federated superlink|supernode|submit``: the processes of a real federation on Flower's
deployment engine (:mod:`ids_lightning.federation.deployment`).

    ids federated superlink --port 9300                 (the server machine)
    ids federated supernode --superlink HOST:9300 --site 0 --sites 2 [--port 9400] [overrides...]
    ids federated submit --superlink HOST:9300 --output-dir DIR [overrides...]

``overrides`` are the Hydra overrides of ``python train.py experiment=federated ...``: a site's
overrides choose its data (``dataset.files=[...] federated.partition=whole`` at a real site), the
submitted ones the run (strategy, rounds). See docs/federated.md for TLS and many machines.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from ids_lightning.core.errors import exit_status
from ids_lightning.federation.deployment import check_binding, environment, submit, superlink, supernode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ids federated",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument(
        "--secure",
        action="store_true",
        help="TLS: Flower's certificate options go in $FLOWER_ARGS (superlink, supernode) or --root-certificates "
        "(submit); without it the processes talk unencrypted, which suits loopback and closed lab networks only",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    link = commands.add_parser("superlink", help="the server's process: sites connect to it, runs are submitted to it")
    link.add_argument("--port", type=int, default=9300, help="its HTTP API port (sites and submit connect here)")
    link.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address it listens on (default: %(default)s, this machine only); beyond loopback it "
        "needs --secure, or --allow-insecure-remote",
    )
    link.add_argument(
        "--allow-insecure-remote",
        action="store_true",
        help="listen beyond loopback without TLS or site authentication (a closed lab network only)",
    )
    node = commands.add_parser("supernode", help="one site's process")
    node.add_argument("--superlink", required=True, help="HOST:PORT of the SuperLink")
    node.add_argument("--site", type=int, required=True, help="this site's number, from 0")
    node.add_argument("--sites", type=int, required=True, help="how many sites the federation has")
    node.add_argument("--port", type=int, default=9400, help="its local app API port (one per site on a machine)")
    node.add_argument("overrides", nargs="*", help="Hydra overrides of this site's config")
    submitting = commands.add_parser("submit", help="run federated training on a SuperLink and wait for it")
    submitting.add_argument("--superlink", required=True, help="HOST:PORT of the SuperLink")
    submitting.add_argument("--output-dir", type=Path, required=True, help="the run folder, on the SuperLink's machine")
    submitting.add_argument("--root-certificates", type=Path, help="the CA certificate of a SuperLink started with TLS")
    submitting.add_argument("overrides", nargs="*", help="Hydra overrides of the run's config")
    args = parser.parse_args(argv)
    insecure = not args.secure
    extra = shlex.split(os.environ.get("FLOWER_ARGS", ""))
    if args.command == "submit":
        return submit(args.superlink, args.output_dir, args.overrides, insecure, args.root_certificates)
    if args.command == "superlink":
        warning = check_binding(args.host, insecure, args.allow_insecure_remote)
        if warning:
            print(warning, file=sys.stderr)
        command = superlink(args.port, insecure, args.host)
    else:
        command = supernode(args.superlink, args.site, args.sites, args.port, args.overrides, insecure)
    os.execve(command[0], [*command, *extra], environment())  # the Flower process takes over this one
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
