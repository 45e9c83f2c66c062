"""The sensor's records, shaped like Suricata's EVE JSON so that a SIEM pipeline ingests them:
one JSON object per line, ``event_type`` ``alert`` (a flow past the operating point, or one
flagged unknown), ``flow`` (every other flow, with ``--all``) or ``incident`` (a host's evidence
in a time window past its threshold; :mod:`ids_lightning.edge.incidents`).

Every record carries ``timestamp`` (ISO 8601, from the flow's start time; where the dataset has
none, as NSL-KDD, the time it was scored), the flow's addresses, ports and protocol where the
dataset has them, its Zeek ``uid`` and its Community ID (computed with the ``communityid``
package, as Zeek's and Suricata's), the prediction (``alert``: class, score, per-class
probabilities, severity, novelty, unknown), the model that made it (``model``: run, package
version, model sha256), where it was read (``input``: file and line) and the input's label where
it has one. ``alert.schema.json`` beside this module is the JSON Schema every record meets;
docs/sensor.md maps the fields to the Elastic Common Schema.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np

from ids_lightning.core import provenance
from ids_lightning.core.delimited import parse_number
from ids_lightning.core.table import RawTable

SCHEMA = Path(__file__).with_name("alert.schema.json")
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "icmp6": 58, "ipv6-icmp": 58, "sctp": 132}


@dataclass(frozen=True)
class ModelInfo:
    """What made a record: the run folder's name, the detector's package version, the model's
    sha256, and what made the model (its ONNX metadata: the version, commit and config and data
    hashes it was trained with; None for each where the model predates them)."""

    run: str
    version: str
    sha256: str
    trained_with: dict = field(default_factory=lambda: provenance.from_onnx_metadata({}))

    @classmethod
    def of(cls, folder: Path, model_path: Path, metadata: dict[str, str] | None = None) -> ModelInfo:
        from ids_lightning import __version__

        digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
        return cls(folder.resolve().name, __version__, digest, provenance.from_onnx_metadata(metadata or {}))

    def as_dict(self) -> dict:
        return {"run": self.run, "version": self.version, "sha256": self.sha256, "trained_with": self.trained_with}


@dataclass
class Scored:
    """A table's predictions: per-class probabilities, the predicted class, the attack score
    (one minus the benign classes' probability), novelty (or None), unknown, which rows are
    alerts at the operating point, the input's labels, and each record's category: its predicted
    class; for a flow past the operating point, the likeliest attack class (a threshold below
    one half can raise a flow whose likeliest class is benign); ``unknown`` where only the
    unknown flag raised it."""

    probabilities: np.ndarray
    best: np.ndarray
    score: np.ndarray
    novelty: np.ndarray | None
    unknown: np.ndarray
    alert: np.ndarray
    labels: np.ndarray
    category: np.ndarray
    explained: dict[int, dict] = field(default_factory=dict)  # alert row -> reason, explanation, window flows
    density: np.ndarray | None = None  # the benign density's score, where the run has one
    unlike_benign: np.ndarray | None = None  # called benign, with a density past its threshold


def severity(score: float, alert: bool) -> int:
    """Suricata's scale (1 is the most severe): 1 from a score of 0.9, 2 from 0.5, else 3 (an
    alert on novelty alone, or just past a low operating point)."""
    if not alert:
        return 3
    return 1 if score >= 0.9 else 2 if score >= 0.5 else 3


def records(
    table: RawTable, scored: Scored, classes: list[str], flow_fields: dict[str, str], model: ModelInfo, all_flows: bool
) -> Iterator[tuple[int, dict]]:
    """``(row, record)``: the EVE records of a scored table, in input order: alerts, and with
    ``all_flows`` the other flows too."""
    meta = table.meta
    rows = range(len(table)) if all_flows else np.flatnonzero(scored.alert)
    scored_at = datetime.now(timezone.utc).isoformat()
    model_info = model.as_dict()
    for i in rows:
        fields = {name: _plain(meta[key][i]) for name, key in flow_fields.items() if key in meta}
        stamp = fields.pop("timestamp", None)
        record = {
            "timestamp": iso(stamp) if stamp is not None else scored_at,
            "event_type": "alert" if scored.alert[i] else "flow",
        }
        for port in ("src_port", "dest_port"):
            if port in fields:
                fields[port] = _port(fields[port])
        record |= {k: v for k, v in fields.items() if v is not None}
        flow_id = community_id(record)
        if flow_id is not None:
            record["community_id"] = flow_id
        record["alert"] = {
            "category": scored.category[i],
            "score": round(float(scored.score[i]), 6),
            "probabilities": {c: round(float(p), 6) for c, p in zip(classes, scored.probabilities[i])},
            "severity": severity(float(scored.score[i]), bool(scored.alert[i])),
            "novelty": None if scored.novelty is None else round(float(scored.novelty[i]), 6),
            **({} if scored.density is None else {"density": round(float(scored.density[i]), 4)}),
            "unknown": bool(scored.unknown[i]),
            **scored.explained.get(int(i), {}),
        }
        record["model"] = model_info
        record["input"] = {"file": str(table.source[i]), "line": int(table.line[i])}
        if scored.labels[i] is not None:
            record["label"] = scored.labels[i]
        yield int(i), record


def community_id(record: dict) -> str | None:
    """The Community ID (v1, seed 0) of a record's addresses, ports and protocol; None where it
    lacks them. ICMP takes Zeek's convention: the type in the source port, the code in the
    destination port."""
    proto = str(record.get("proto", "")).lower()
    src, dest = record.get("src_ip"), record.get("dest_ip")
    if proto not in PROTOCOLS or src is None or dest is None:
        return None
    sport, dport = record.get("src_port"), record.get("dest_port")
    return _community_id(PROTOCOLS[proto], str(src), str(dest), sport, dport)


@lru_cache(maxsize=65536)
def _community_id(proto: int, src: str, dest: str, sport: int | None, dport: int | None) -> str | None:
    import communityid

    try:
        if proto in (1, 58) and sport is not None and dport is not None:
            make = communityid.FlowTuple.make_icmp if proto == 1 else communityid.FlowTuple.make_icmp6
            flow = make(src, dest, sport, dport)
        elif sport is not None and dport is not None:
            flow = communityid.FlowTuple(proto, src, dest, sport, dport)
        else:
            flow = communityid.FlowTuple(proto, src, dest)
        return _engine().calc(flow)
    except (communityid.Error, ValueError):  # an address that is not IP: no id
        return None


@lru_cache(maxsize=1)
def _engine():
    import communityid

    return communityid.CommunityID()


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def _port(value: object) -> int | None:
    try:
        port = int(parse_number(str(value)))
    except ValueError:
        return None
    return port if 0 <= port <= 65535 else None


def iso(stamp: object) -> str:
    """ISO 8601 in UTC of an epoch time (Zeek's ``ts``, BoT-IoT's ``stime``)."""
    return datetime.fromtimestamp(float(stamp), timezone.utc).isoformat()


def dumps(record: dict) -> str:
    return json.dumps(record, allow_nan=False, separators=(",", ":"))
