"""Fetch public data files with a sha256 check; never keep a file whose hash is wrong."""

from __future__ import annotations

import hashlib
import logging
import urllib.request
from pathlib import Path

from ids_lightning.errors import DataError

log = logging.getLogger(__name__)


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download(urls: list[str], dest: str | Path, sha256: str, timeout: float = 30.0) -> Path:
    """Try each URL in turn; keep the first file whose sha256 matches. Raise if none does."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    failures = []
    for url in urls:
        try:
            log.info("downloading %s -> %s", url, dest)
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                while block := response.read(1 << 20):
                    out.write(block)
        except OSError as err:
            failures.append(f"{url}: {err}")
            continue
        actual = sha256_of(tmp)
        if actual == sha256:
            tmp.replace(dest)
            return dest
        failures.append(f"{url}: sha256 {actual} does not match the expected {sha256}")
    tmp.unlink(missing_ok=True)
    raise DataError(f"could not download {dest.name}:\n  " + "\n  ".join(failures))
