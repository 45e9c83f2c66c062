"""Building blocks of out-of-core training (numpy only): a seeded hash of row ids, so that a random
split does not depend on how the rows were chunked, and a quantile sketch whose memory does not
grow with the rows it has seen."""

from __future__ import annotations

import hashlib

import numpy as np

SKETCH_CAPACITY = 1 << 17  # values per level of a sketch; up to this many rows its quantiles are exact
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit reaches every output bit."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def row_uniform(names: np.ndarray, numbers: np.ndarray, seed: int) -> np.ndarray:
    """A number in [0, 1) per row, from its id (``names[i]``, ``numbers[i]``: a file and a line,
    or a host and a block of its flows) and ``seed`` alone: the same row gets the same number
    however the rows are chunked or ordered, and thresholds on it cut seeded random splits."""
    uniques, inverse = np.unique(np.asarray(names, dtype=str), return_inverse=True)
    digests = [hashlib.blake2b(f"{seed}\x00{name}".encode(), digest_size=8).digest() for name in uniques]
    keys = np.frombuffer(b"".join(digests), dtype="<u8")[inverse.reshape(-1)] if len(uniques) else np.zeros(0, "<u8")
    with np.errstate(over="ignore"):
        mixed = _mix(keys.astype(np.uint64) ^ (np.asarray(numbers, dtype=np.int64).astype(np.uint64) * _GOLDEN))
    return (mixed >> np.uint64(11)).astype(np.float64) * 2.0**-53


class QuantileSketch:
    """Quantiles of a stream of numbers in bounded memory (a compactor hierarchy, as in KLL).

    Level ``h`` holds values that stand for ``2**h`` values each; a level over ``capacity`` is
    sorted and every second value (seeded random offset) moves up a level. Until the first
    compaction the sketch holds every value and its quantiles are ``np.quantile``'s exactly;
    after it, a quantile's rank is off by about ``rows / capacity * log2(rows / capacity)`` rows
    at most.
    """

    def __init__(self, capacity: int = SKETCH_CAPACITY, seed: int = 0):
        self.capacity, self.rows = capacity, 0
        self.levels: list[list[np.ndarray]] = [[]]
        self._sizes = [0]
        self._rng = np.random.default_rng(seed)

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        self.rows += len(values)
        self._add(0, values)

    def _add(self, level: int, values: np.ndarray) -> None:
        if level == len(self.levels):
            self.levels.append([])
            self._sizes.append(0)
        self.levels[level].append(values)
        self._sizes[level] += len(values)
        if self._sizes[level] <= self.capacity:
            return
        pool = np.sort(np.concatenate(self.levels[level]))
        kept = pool[-1:] if len(pool) % 2 else pool[:0]  # an odd value out waits at this level
        pool = pool[: len(pool) - len(kept)]
        self.levels[level], self._sizes[level] = [kept], len(kept)
        self._add(level + 1, pool[int(self._rng.integers(2)) :: 2])

    @property
    def exact(self) -> bool:
        return len(self.levels) == 1

    def quantiles(self, levels: np.ndarray) -> np.ndarray:
        """The values at ``levels`` (in [0, 1]), interpolated linearly as ``np.quantile`` does."""
        if self.rows == 0:
            raise ValueError("no values in the sketch")
        if self.exact:
            return np.quantile(np.concatenate(self.levels[0]), levels)
        values = np.concatenate([np.concatenate(parts) for parts in self.levels if parts])
        weights = np.concatenate(
            [np.full(sum(len(p) for p in parts), 2**h, dtype=np.int64) for h, parts in enumerate(self.levels) if parts]
        )
        order = np.argsort(values, kind="stable")
        values, ends = values[order], np.cumsum(weights[order])  # item i covers ranks [ends-w, ends)
        ranks = np.asarray(levels, dtype=np.float64) * (ends[-1] - 1)
        low = np.floor(ranks)

        def at(rank: np.ndarray) -> np.ndarray:
            return values[np.minimum(np.searchsorted(ends, rank, side="right"), len(values) - 1)]

        return at(low) + (ranks - low) * (at(low + 1) - at(low))
