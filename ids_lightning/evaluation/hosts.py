"""Host-level detection, read from the sensor's records (``ids detect --all`` on a labelled log):
what an operator sees is incidents per host, not flow scores.

Per source host: its flows and malicious flows (by the input's labels), its first malicious flow
and its first incident. An infected host (one malicious flow or more) is detected when an
incident opens for it; its time to detect is from its first malicious flow to that incident. An
incident on a host and window holding no malicious flow is a false incident; their rate is per
host-day observed (each host's span from its first to its last flow, at least one window).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import numpy as np


def host_level(records: Iterable[dict], benign: frozenset[str] = frozenset({"benign", "normal"})) -> dict:
    flows: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    incidents: list[tuple[str, float, float, float]] = []  # host, opened, window start, window seconds
    for record in records:
        if record["event_type"] == "incident":
            info = record["incident"]
            incidents.append(
                (record["src_ip"], _epoch(record["timestamp"]), _epoch(info["window_start"]), info["window_seconds"])
            )
        elif "src_ip" in record and "label" in record:
            flows[record["src_ip"]].append((_epoch(record["timestamp"]), str(record["label"]).lower() not in benign))
    window = incidents[0][3] if incidents else 300.0
    first_incident: dict[str, float] = {}
    false_incidents = 0
    for host, opened, start, seconds in incidents:
        first_incident.setdefault(host, opened)
        if not any(bad and start <= ts < start + seconds for ts, bad in flows.get(host, [])):
            false_incidents += 1
    infected = {h: min(ts for ts, bad in f if bad) for h, f in flows.items() if any(bad for _, bad in f)}
    delays = [max(0.0, first_incident[h] - t) for h, t in infected.items() if h in first_incident]
    host_days = sum(max(max(t for t, _ in f) - min(t for t, _ in f), window) for f in flows.values()) / 86_400
    return {
        "hosts": len(flows),
        "infected_hosts": len(infected),
        "infected_detected": len(delays),
        "time_to_detect_median_s": float(np.median(delays)) if delays else None,
        "time_to_detect_max_s": float(max(delays)) if delays else None,
        "incidents": len(incidents),
        "false_incidents": false_incidents,
        "host_days": round(host_days, 4),
        "false_incidents_per_host_day": round(false_incidents / host_days, 3) if host_days else None,
    }


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()
