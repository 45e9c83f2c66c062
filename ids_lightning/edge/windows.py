"""Windows for a stream: each source host's last flows, kept between chunks with bounded memory.

The detector scores a log chunk by chunk. For a run trained on windows (``window`` > 1 in its
``preprocess.json``) each flow is scored with the flows its host made before it, also those of
earlier chunks: a ring of the last ``window - 1`` flows (model rows, and what the context
features read) is kept per host. At most ``max_hosts`` hosts are tracked; the least recently
seen is forgotten first (its next flow starts a fresh window), and both counts are reported.

Windows are built by the same function as in training (:func:`core.windows.window_index`),
over the hosts' rings followed by the chunk, so streamed inputs equal the offline ones.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ids_lightning.core.errors import ConfigError
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.core.table import RawTable
from ids_lightning.core.windows import (
    CONTEXT_FEATURES,
    PAD,
    WindowedRows,
    add_numeric,
    codes,
    context_features,
    context_inputs,
    window_index,
    windowed,
)

DEFAULT_MAX_HOSTS = 10_000  # at window 32 and ~50 features about 6 KB of rows per host: ~60 MB


@dataclass
class Ring:
    """A host's last flows, oldest first: model rows and the context features' inputs."""

    rows: np.ndarray
    inputs: dict[str, np.ndarray]


class HostWindows:
    """Turns chunks of a flow stream into windowed model inputs, remembering each host's last
    ``window - 1`` flows across chunks (at most ``max_hosts`` hosts, least recently seen
    evicted)."""

    def __init__(self, preprocessor: Preprocessor, spec, max_hosts: int = DEFAULT_MAX_HOSTS):
        if max_hosts < 1:
            raise ConfigError(f"max_hosts must be at least 1, not {max_hosts}")
        if spec.host_column is None:
            raise ConfigError(f"{spec.title} has no source hosts: a windowed run cannot score it")
        self.pre, self.spec, self.max_hosts = preprocessor, spec, max_hosts
        self.window = preprocessor.window
        self.context = CONTEXT_FEATURES[0] in preprocessor.numeric_names
        self.rings: OrderedDict[str, Ring] = OrderedDict()
        self.evicted = 0

    def transform(self, table: RawTable) -> tuple[WindowedRows, np.ndarray]:
        """``(inputs [n, window, features + 1], unknown [n])`` of a chunk, in stream order."""
        if self.spec.host_column not in table.meta:
            raise ConfigError(f"the records have no {self.spec.host_column!r}: a windowed run needs source hosts")
        hosts = np.asarray(table.meta[self.spec.host_column], dtype=str)
        seen = list(dict.fromkeys(hosts.tolist()))  # first appearance order
        rings = [(h, self.rings[h]) for h in seen if h in self.rings]
        prefix_hosts = np.concatenate([np.full(len(r.rows), h) for h, r in rings] + [np.zeros(0, dtype=str)])
        all_hosts = np.concatenate([prefix_hosts, hosts])
        start = len(prefix_hosts)
        windows = window_index(codes(all_hosts), self.window)
        inputs = None
        if self.context:
            chunk_inputs = context_inputs(table, self.spec)
            inputs = {k: np.concatenate([*(r.inputs[k] for _, r in rings), v]) for k, v in chunk_inputs.items()}
            table = add_numeric(table, context_features(windows, inputs, rows=np.arange(start, len(all_hosts))))
        x, unknown = self.pre.transform(table)
        rows = np.concatenate([*(r.rows for _, r in rings), x]) if rings else x
        self._remember(seen, all_hosts, windows, rows, inputs)
        return windowed(rows, windows[start:]), unknown

    def _remember(self, seen: list[str], all_hosts, windows, rows, inputs) -> None:
        """Keep each host's last ``window - 1`` flows: the window of its last flow, less the
        oldest position."""
        uniques, from_end = np.unique(all_hosts[::-1], return_index=True)
        last = dict(zip(uniques.tolist(), (len(all_hosts) - 1 - from_end).tolist()))
        for host in seen:
            kept = windows[last[host], 1:]
            kept = kept[kept != PAD]
            self.rings[host] = Ring(rows[kept], {k: v[kept] for k, v in inputs.items()} if inputs else {})
            self.rings.move_to_end(host)
        while len(self.rings) > self.max_hosts:
            self.rings.popitem(last=False)
            self.evicted += 1

    @property
    def tracked(self) -> int:
        return len(self.rings)

    def state(self) -> dict:
        """The rings as plain lists (the sensor's state file), least recently seen host first."""
        return {
            "evicted": self.evicted,
            "hosts": [
                [host, ring.rows.tolist(), {k: v.tolist() for k, v in ring.inputs.items()}]
                for host, ring in self.rings.items()
            ],
        }

    def restore(self, state: dict) -> None:
        """The rings of :meth:`state`, checked against this run's model rows."""
        width = self.pre.num_features
        self.rings.clear()
        for host, rows, inputs in state["hosts"]:
            rows = np.asarray(rows, dtype=np.float32).reshape(-1, width)
            if len(rows) >= self.window:
                raise ValueError(f"host {host!r} keeps {len(rows)} flows, more than a window of {self.window} needs")
            self.rings[str(host)] = Ring(rows, {k: np.asarray(v) for k, v in inputs.items()})
        self.evicted = int(state["evicted"])
