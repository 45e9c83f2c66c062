"""Host incidents (Slips' idea on our models): the evidence against each source host is summed
per time window of the flows' own clock, and one ``incident`` record is written when a host's
alerts in a window reach the threshold. Once an incident is open, that host's further alerts in
the window are counted into it, not written again; the summary and the state keep the final
counts of the latest :data:`LISTED` incidents (a sensor runs for months: both stay bounded).

The evidence of an open window: flows and alerts per class, the peers and destination ports it
reached, the highest attack score, the uids of the strongest alerts and, where alerts are
explained, the features that drove them (positive contributions summed). Windows are aligned to
the epoch (``floor(ts / window_seconds)``); a host's window is dropped when a later one begins,
and at most ``max_hosts`` hosts are kept (the least recently seen forgotten first).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field

import numpy as np

from ids_lightning.core.errors import ConfigError
from ids_lightning.core.table import RawTable
from ids_lightning.edge.alerts import ModelInfo, Scored, iso

TOP = 5  # peers, ports and uids an incident lists
LISTED = 1000  # the latest incidents the summary lists


@dataclass
class Evidence:
    """One host's evidence in one window."""

    window: int
    first_seen: float
    last_seen: float
    flows: int = 0
    alerts: dict = field(default_factory=dict)
    peers: dict = field(default_factory=dict)
    ports: dict = field(default_factory=dict)
    max_score: float = 0.0
    strongest: list = field(default_factory=list)  # [score, uid] of the strongest alerts
    opened: bool = False
    features: dict = field(default_factory=dict)  # feature -> summed positive contribution of the alerts


class Incidents:
    """The evidence of each host in its current window, and the incidents opened."""

    def __init__(self, flow_fields: dict[str, str], window_seconds: float, threshold: int, max_hosts: int):
        if window_seconds <= 0 or threshold < 1:
            raise ConfigError(f"an incident window must be positive and its threshold at least 1 alert, "
                              f"not {window_seconds} s and {threshold}")  # fmt: skip
        self.fields = flow_fields
        self.window_seconds, self.threshold, self.max_hosts = window_seconds, threshold, max_hosts
        self.hosts: OrderedDict[str, Evidence] = OrderedDict()
        self.opened: list[dict] = []  # the latest incidents' final counts, for the summary

    @property
    def usable(self) -> bool:
        """Whether the dataset's records name a source host and a time (NSL-KDD's do not)."""
        return "src_ip" in self.fields and "timestamp" in self.fields

    def update(
        self, table: RawTable, scored: Scored, classes: list[str], model: ModelInfo
    ) -> tuple[dict[int, dict], set[int]]:
        """Take a scored table in order: the incident records to write after the rows that
        opened them, and the alert rows that an open incident counts instead of writing."""
        meta = table.meta
        if not self.usable or self.fields["src_ip"] not in meta or self.fields["timestamp"] not in meta:
            return {}, set()
        hosts, times = meta[self.fields["src_ip"]], meta[self.fields["timestamp"]]
        peers = meta.get(self.fields.get("dest_ip", ""), np.full(len(table), None, dtype=object))
        ports = meta.get(self.fields.get("dest_port", ""), np.full(len(table), None, dtype=object))
        uids = meta.get(self.fields.get("uid", ""), np.full(len(table), None, dtype=object))
        written: dict[int, dict] = {}
        counted: set[int] = set()
        for i in range(len(table)):
            host, ts = hosts[i], times[i]
            if host is None or ts is None or not np.isfinite(float(ts)):
                continue
            ts = float(ts)
            evidence = self._evidence(str(host), ts)
            evidence.flows += 1
            evidence.first_seen, evidence.last_seen = min(evidence.first_seen, ts), max(evidence.last_seen, ts)
            if not scored.alert[i]:
                continue
            category = scored.category[i]
            evidence.alerts[category] = evidence.alerts.get(category, 0) + 1
            score = float(scored.score[i])
            evidence.max_score = max(evidence.max_score, score)
            for counts, key in ((evidence.peers, peers[i]), (evidence.ports, ports[i])):
                if key is not None:
                    counts[str(key)] = counts.get(str(key), 0) + 1
            for entry in scored.explained.get(i, {}).get("explanation", ()):
                name, contribution = entry["feature"], entry["contribution"]
                if contribution > 0:
                    evidence.features[name] = evidence.features.get(name, 0.0) + contribution
            if uids[i] is not None:
                evidence.strongest = sorted([*evidence.strongest, [score, str(uids[i])]], reverse=True)[:TOP]
            if evidence.opened:
                counted.add(i)
            elif sum(evidence.alerts.values()) >= self.threshold:
                evidence.opened = True
                written[i] = self.record(str(host), evidence, model)
                self.opened.append({"host": str(host), "window_start": iso(evidence.window * self.window_seconds)})
                del self.opened[:-LISTED]
        self._final_counts()
        return written, counted

    def record(self, host: str, evidence: Evidence, model: ModelInfo) -> dict:
        return {
            "timestamp": iso(evidence.last_seen),  # when it opened: the flow that crossed the threshold
            "event_type": "incident",
            "src_ip": host,
            "incident": self.summary(evidence),
            "model": model.as_dict(),
        }

    def summary(self, evidence: Evidence) -> dict:
        return {
            "window_start": iso(evidence.window * self.window_seconds),
            "window_seconds": self.window_seconds,
            "first_seen": iso(evidence.first_seen),
            "last_seen": iso(evidence.last_seen),
            "flows": evidence.flows,
            "alerts": dict(evidence.alerts),
            "max_score": round(evidence.max_score, 6),
            "threshold": self.threshold,
            "top_peers": [[peer, n] for peer, n in Counter(evidence.peers).most_common(TOP)],
            "top_ports": [[int(float(port)), n] for port, n in Counter(evidence.ports).most_common(TOP)],
            "uids": [uid for _, uid in evidence.strongest],
            **({"top_features": [[name, round(total, 4)] for name, total in
                                 sorted(evidence.features.items(), key=lambda kv: -kv[1])[:TOP]]}
               if evidence.features else {}),
        }  # fmt: skip

    def _evidence(self, host: str, ts: float) -> Evidence:
        window = int(ts // self.window_seconds)
        evidence = self.hosts.get(host)
        if evidence is None or evidence.window < window:  # a later window begins: the old one is done
            evidence = Evidence(window, ts, ts)
            self.hosts[host] = evidence
        self.hosts.move_to_end(host)
        while len(self.hosts) > self.max_hosts:
            self.hosts.popitem(last=False)
        return evidence

    def _final_counts(self) -> None:
        """The summary's incidents with the counts of their windows so far."""
        by_key = {(e["host"], e["window_start"]): e for e in self.opened}
        for host, evidence in self.hosts.items():
            key = (host, iso(evidence.window * self.window_seconds))
            if evidence.opened and key in by_key:
                by_key[key].update(self.summary(evidence))

    # --- state -----------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"hosts": [[host, asdict(e)] for host, e in self.hosts.items()], "opened": self.opened}

    def restore(self, state: dict) -> None:
        self.hosts = OrderedDict((str(host), Evidence(**evidence)) for host, evidence in state["hosts"])
        self.opened = list(state["opened"])
