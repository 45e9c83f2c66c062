"""OmegaConf resolvers used by ``conf/`` (registered once, before Hydra composes)."""

from __future__ import annotations

import secrets
from pathlib import Path

from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "conf"
# One random id per process: with the time, it keeps run folders apart even for two sweeps
# launched in the same second, while every job of one sweep agrees on its sweep folder.
RUN_ID = secrets.token_hex(3)


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", lambda: RUN_ID)
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
