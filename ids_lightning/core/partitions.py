"""Rows of one split cut into federated sites (clients), each a list of row numbers.

``dirichlet``: label skew — each class's rows shared among the sites by proportions drawn from
Dirichlet(alpha) (small alpha: most of a class at one or two sites). ``family``: every site lacks
one attack class (family) entirely and sees the others and the benign rows. ``column``: each
value of a metadata column (an IoT-23 capture, a BoT-IoT source address) stays at one site.
"""

from __future__ import annotations

import numpy as np

from ids_lightning.core.errors import ConfigError, DataError

PARTITIONS = ("dirichlet", "family", "column", "whole")
MIN_SITE_ROWS = 10
DIRICHLET_TRIES = 100


def dirichlet(labels: np.ndarray, sites: int, alpha: float, seed: int) -> list[np.ndarray]:
    """Label-skewed sites: for each class, shares of its rows drawn from Dirichlet(alpha, ...,
    alpha). Draws again (up to 100 times) until every site holds at least 10 rows."""
    _check_sites(sites, len(labels))
    if alpha <= 0:
        raise ConfigError(f"federated.alpha must be positive, not {alpha}")
    rng = np.random.default_rng(seed)
    classes = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    for _ in range(DIRICHLET_TRIES):
        parts: list[list[np.ndarray]] = [[] for _ in range(sites)]
        for rows in classes:
            rows = rng.permutation(rows)
            cuts = (np.cumsum(rng.dirichlet(np.full(sites, alpha)))[:-1] * len(rows)).astype(int)
            for site, piece in enumerate(np.split(rows, cuts)):
                parts[site].append(piece)
        result = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(p) for p in result) >= MIN_SITE_ROWS:
            return result
    raise DataError(
        f"Dirichlet({alpha}) left a site with fewer than {MIN_SITE_ROWS} rows in {DIRICHLET_TRIES} draws: "
        "use fewer sites or a larger federated.alpha"
    )


def by_family(labels: np.ndarray, sites: int, benign: set[str], seed: int) -> list[np.ndarray]:
    """Site ``k`` never sees attack class number ``k mod F`` (of the F attack classes present):
    that class's rows go to the other sites; every other class, benign included, is shared
    evenly at random."""
    _check_sites(sites, len(labels))
    rng = np.random.default_rng(seed)
    names = np.asarray(labels).astype(str)
    attacks = sorted({n for n in names.tolist() if n.lower() not in benign})
    if len(attacks) < 2:
        raise ConfigError(f"a family partition needs at least two attack classes, not {attacks}: use a finer task")
    parts: list[list[np.ndarray]] = [[] for _ in range(sites)]
    for name in sorted(set(names.tolist())):
        rows = rng.permutation(np.flatnonzero(names == name))
        lacking = attacks.index(name) if name in attacks and sites > 1 else -1
        holders = [k for k in range(sites) if k % len(attacks) != lacking]
        for holder, piece in zip(holders, np.array_split(rows, len(holders))):
            parts[holder].append(piece)
    return [np.sort(np.concatenate(p)) if p else np.empty(0, dtype=np.int64) for p in parts]


def by_column(values: np.ndarray, sites: int | None) -> tuple[list[np.ndarray], list[list[str]]]:
    """Each distinct value's rows at one site: one site per value (``sites`` None or equal to
    the number of values), or values dealt largest first to the site with the fewest rows.
    Returns the rows and the values of each site."""
    names, inverse, counts = np.unique(np.asarray(values).astype(str), return_inverse=True, return_counts=True)
    sites = len(names) if sites is None else sites
    if not 1 <= sites <= len(names):
        raise ConfigError(
            f"{len(names)} distinct values cannot make {sites} sites: set federated.clients ≤ {len(names)}"
        )
    members: list[list[int]] = [[] for _ in range(sites)]
    sizes = np.zeros(sites, dtype=np.int64)
    for value in np.argsort(-counts, kind="stable"):
        site = int(np.argmin(sizes))
        members[site].append(int(value))
        sizes[site] += counts[value]
    rows = [np.flatnonzero(np.isin(inverse, m)) for m in members]
    return rows, [sorted(names[m].tolist()) for m in members]


def _check_sites(sites: int, rows: int) -> None:
    if sites < 1:
        raise ConfigError(f"federated.clients must be at least 1, not {sites}")
    if rows < sites * MIN_SITE_ROWS:
        raise DataError(f"{rows} rows are too few for {sites} sites of at least {MIN_SITE_ROWS} rows")
