"""Operating points: the attack-score thresholds a run calibrates on its validation rows, one per
benign false-alarm rate, saved as ``operating_points.json`` beside the model; the sensor takes
one (``ids detect --fpr``) and never a threshold chosen on test rows.

The attack score of a flow is one minus the probability the model gives its benign classes; a
flow is an alert when its score is above the threshold. At each rate the file also says the
share of validation attacks above it (the detection rate to expect on traffic like validation's).

Where validation holds whole captures with hosts and times, each rate also carries its host
incident threshold (:func:`calibrate_incidents`): the fewest alerts per source host and window
that keep false incidents on the validation captures within a budget per host-day.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.fileio import atomic_write_json, read_json_state
from ids_lightning.core.formats import check_format
from ids_lightning.core.novelty import threshold_at

OPERATING_POINTS_FILE = "operating_points.json"
FORMAT = 1  # its format (none before 2026-12-05: format 0, the same fields)
RATES = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1)  # benign false-alarm rates calibrated
DEFAULT_RATE = 0.01
SCORE = "1 - p(benign classes)"
INCIDENT_SECONDS = 300.0  # the sensor's incident window, and the one calibrated by default
INCIDENT_BUDGET = 1.0  # false incidents per host-day a calibrated incident threshold allows
DEFAULT_INCIDENT_ALERTS = 5  # the incident threshold where the run calibrated none
DAY = 86_400.0


def attack_scores(probabilities: np.ndarray, benign: list[int]) -> np.ndarray:
    """One minus the benign classes' probability (without a benign class: the top probability)."""
    score = 1.0 - probabilities[:, benign].sum(axis=1) if benign else probabilities.max(axis=1)
    return np.clip(score, 0.0, 1.0)


def calibrate(scores: np.ndarray, benign_rows: np.ndarray) -> dict:
    """The thresholds at :data:`RATES` from validation ``scores``: the benign rows set each one,
    and the share of attack rows above it is its detection rate."""
    benign_scores, attack = scores[benign_rows], scores[~benign_rows]
    points = []
    for rate in RATES:
        threshold = threshold_at(benign_scores, rate)
        points.append(
            {
                "fpr": rate,
                "threshold": threshold,
                "validation_fpr": float((benign_scores > threshold).mean()),
                "detection_rate": float((attack > threshold).mean()) if len(attack) else None,
            }
        )
    return {"score": SCORE, "benign_rows": int(benign_rows.sum()), "attack_rows": int((~benign_rows).sum()),
            "points": points}  # fmt: skip


@dataclass(frozen=True)
class HostFlows:
    """Labelled rows as the sensor's incidents see them: each one's source host, time, and
    whether it holds a category training never saw (the sensor's other unknown flag)."""

    hosts: np.ndarray
    times: np.ndarray
    unseen_category: np.ndarray

    def head(self, rows: int) -> HostFlows:
        return HostFlows(self.hosts[:rows], self.times[:rows], self.unseen_category[:rows])


class IncidentReplay:
    """The sensor's incident rule (:mod:`ids_lightning.edge.incidents`) replayed on labelled
    flows in their file order: a host's window (epoch-aligned) ends when a flow of a later one
    comes, a flow of an earlier one counts into the open window, an incident opens at the
    window's threshold-th alert, stamped with the latest flow time its window has seen, and is
    false when its window holds no malicious flow. Host-days are each host's span from first to
    last flow, at least one window. Flows without a host or time are left out, as the sensor
    leaves them out of incidents."""

    def __init__(self, flows: HostFlows, window_seconds: float = INCIDENT_SECONDS):
        self.known = np.array([h is not None for h in flows.hosts], dtype=bool) & np.isfinite(flows.times)
        self.window_seconds = window_seconds
        self.times, self.unseen_category = flows.times[self.known], flows.unseen_category[self.known]
        names, self.host = np.unique(flows.hosts[self.known].astype(str), return_inverse=True)
        self.hosts = len(names)
        self.group, self.stamp = self._windows(np.floor(self.times / window_seconds).astype(np.int64))
        everything = np.arange(len(self.times))
        first, last = self._earliest(everything), -self._earliest(everything, -self.times)
        self.host_days = float(np.maximum(last - first, window_seconds).sum() / DAY) if self.hosts else 0.0
        self.order = np.argsort(self.group, kind="stable")  # each window's flows in file order

    def _windows(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each flow's window (a number per host and window, as the sensor opens them) and the
        latest flow time its window has seen by then."""
        group, stamp = np.empty(len(window), np.int64), np.empty(len(window))
        current: dict[int, list] = {}  # host -> [window, its number, latest time]
        opened = 0
        for i, (host, w, t) in enumerate(zip(self.host.tolist(), window.tolist(), self.times.tolist())):
            open_window = current.get(host)
            if open_window is None or open_window[0] < w:
                open_window = current[host] = [w, opened, t]
                opened += 1
            open_window[2] = max(open_window[2], t)
            group[i], stamp[i] = open_window[1], open_window[2]
        return group, stamp

    def _earliest(self, rows: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        """Each host's earliest time among ``rows`` (infinite where it has none)."""
        times = self.times if times is None else times
        out = np.full(self.hosts, np.inf)
        np.minimum.at(out, self.host[rows], times[rows])
        return out

    def _counts(self, alerts: np.ndarray, malicious: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Alerts per window, and whether each window holds a malicious flow."""
        return np.bincount(self.group, weights=alerts).astype(np.int64), np.bincount(self.group, weights=malicious) > 0

    def needed(self, alerts: np.ndarray, malicious: np.ndarray, budget: float) -> int:
        """The fewest alerts per window whose false incidents stay within ``budget`` per host-day
        (``alerts``: past the operating point or novel; the unseen-category flag is added here)."""
        counts, bad = self._counts(alerts[self.known] | self.unseen_category, malicious[self.known])
        benign_counts = np.sort(counts[~bad])[::-1]
        allowed = int(np.floor(budget * self.host_days))
        return 1 if len(benign_counts) <= allowed else max(1, int(benign_counts[allowed]) + 1)

    def outcome(self, alerts: np.ndarray, malicious: np.ndarray, needed: int) -> dict:
        """Incidents at ``needed`` alerts per window: false ones per host-day, infected hosts
        detected, and the time from a host's first malicious flow to its first incident."""
        alerts = alerts[self.known].astype(bool) | self.unseen_category
        malicious = malicious[self.known].astype(bool)
        counts, bad = self._counts(alerts, malicious)
        incidents = counts >= needed
        counted = np.cumsum(alerts[self.order])  # when each incident opens: its window's needed-th alert
        starts = np.r_[0, np.flatnonzero(np.diff(self.group[self.order])) + 1]
        before = np.r_[0, counted[starts[1:] - 1]] if len(starts) else np.zeros(0)
        within = counted - np.repeat(before, np.diff(np.r_[starts, len(self.order)]))
        opens = self.order[alerts[self.order] & (within == needed)]
        first_incident = self._earliest(opens, self.stamp)
        first_malicious = self._earliest(np.flatnonzero(malicious))
        infected = np.isfinite(first_malicious)
        detected = infected & np.isfinite(first_incident)
        delays = np.maximum(first_incident[detected] - first_malicious[detected], 0.0)
        false_incidents = int((incidents & ~bad).sum())
        return {
            "window_seconds": self.window_seconds,
            "alerts": needed,
            "hosts": self.hosts,
            "host_days": round(self.host_days, 4),
            "incidents": int(incidents.sum()),
            "false_incidents": false_incidents,
            "false_incidents_per_host_day": round(false_incidents / self.host_days, 3) if self.host_days else None,
            "infected_hosts": int(infected.sum()),
            "infected_detected": int(detected.sum()),
            "time_to_detect_median_s": float(np.median(delays)) if len(delays) else None,
            "time_to_detect_max_s": float(delays.max()) if len(delays) else None,
        }


def calibrate_incidents(
    alerts: np.ndarray,
    malicious: np.ndarray,
    flows: HostFlows,
    window_seconds: float = INCIDENT_SECONDS,
    budget: float = INCIDENT_BUDGET,
) -> dict | None:
    """The incident threshold of validation flows (``alerts`` at one operating point,
    ``malicious`` by label): the fewest alerts per host and window that keep false incidents
    within ``budget`` per host-day, and what it detects there (:class:`IncidentReplay`). None
    without a flow that names its host and time."""
    replay = IncidentReplay(flows, window_seconds)
    if not replay.hosts:
        return None
    needed = replay.needed(alerts, malicious, budget)
    return {"budget_per_host_day": budget, **replay.outcome(alerts, malicious, needed)}


def save(points: dict, folder: Path) -> None:
    atomic_write_json(folder / OPERATING_POINTS_FILE, {"format": FORMAT, **points})


@dataclass(frozen=True)
class OperatingPoint:
    """What the sensor runs at: the attack-score threshold (None: a non-benign prediction is
    an alert), the incident threshold the run calibrated for its window (None: not
    calibrated), and what the summary says of both."""

    threshold: float | None
    incident_alerts: int | None
    summary: dict


def chosen_point(folder: Path, fpr: float | None, incident_seconds: float = INCIDENT_SECONDS) -> OperatingPoint:
    """The point for ``fpr`` (default :data:`DEFAULT_RATE`) from ``folder``'s file, with its
    incident threshold where the run calibrated one for windows of ``incident_seconds``; without
    the file no threshold: an alert is a flow whose predicted class is not benign."""
    path = folder / OPERATING_POINTS_FILE
    if not os.path.lexists(path):
        if fpr is not None:
            raise DataError(f"{folder}: no {OPERATING_POINTS_FILE}, so --fpr cannot be chosen (train the run again)")
        return OperatingPoint(None, None, {"rule": "predicted class is not benign"})
    try:
        state = read_json_state(path)
        check_format(state, path, FORMAT)
        by_rate = {float(p["fpr"]): p for p in state["points"]}
        for point in by_rate.values():
            float(point["threshold"])
            incidents = point.get("incidents")
            if incidents is not None:
                float(incidents["window_seconds"]), int(incidents["alerts"])
    except DataError:  # a newer format, or a file that is no file: it says so itself
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{path}: not the operating points this project wrote ({err})") from err
    rate = DEFAULT_RATE if fpr is None else fpr
    if rate not in by_rate:
        raise ConfigError(f"--fpr {rate} is not among the run's calibrated rates {sorted(by_rate)}")
    point = by_rate[rate]
    incidents = point.get("incidents")
    calibrated = incidents is not None and float(incidents["window_seconds"]) == incident_seconds
    return OperatingPoint(
        float(point["threshold"]),
        int(incidents["alerts"]) if calibrated else None,
        {
            "rule": "attack score above the threshold",
            "fpr": rate,
            "threshold": float(point["threshold"]),
            "expected_false_alarms_per_10000_benign": round(rate * 10_000, 1),
            "validation_detection_rate": point.get("detection_rate"),
            **({"incident_calibration": incidents} if incidents is not None else {}),
        },
    )
