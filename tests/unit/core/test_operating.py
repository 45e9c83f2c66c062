"""Operating points and the incident threshold: the replay of the sensor's incident rule on
labelled rows gives the sensor's own incidents, the threshold is the fewest alerts that keep
false incidents within the budget, and the sensor takes it only for the window it was
calibrated for."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ids_lightning.core import operating
from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.operating import HostFlows, IncidentReplay, calibrate_incidents, chosen_point
from ids_lightning.edge.alerts import iso
from ids_lightning.edge.incidents import Incidents
from ids_lightning.evaluation.hosts import host_level
from tests.unit.edge.test_incidents import CLASSES, FIELDS, MODEL, flows


def random_flows(seed: int, rows: int = 400) -> tuple[HostFlows, np.ndarray, np.ndarray]:
    """Flows of a few hosts over an hour, logged out of time order as Zeek logs them (at the
    connection's end), with alerts and labels drawn at random."""
    rng = np.random.default_rng(seed)
    hosts = rng.choice(np.array(["a", "b", "c", None], dtype=object), rows, p=[0.5, 0.3, 0.15, 0.05])
    times = np.sort(rng.uniform(0, 3600, rows)) - rng.exponential(30, rows) * (rng.random(rows) < 0.2)
    malicious = rng.random(rows) < 0.3
    alerts = rng.random(rows) < np.where(malicious, 0.7, 0.1)
    return HostFlows(hosts, times, np.zeros(rows, bool)), alerts, malicious


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("needed", [1, 3, 6])
def test_the_replay_opens_the_sensor_s_incidents_at_the_sensor_s_times(seed, needed):
    host_flows, alerts, malicious = random_flows(seed)
    table, scored = flows(list(host_flows.hosts), list(host_flows.times), list(alerts))
    sensor = Incidents(FIELDS, window_seconds=300, threshold=needed, max_hosts=100)
    opened, _ = sensor.update(table, scored, CLASSES, MODEL)
    records = [opened[i] for i in sorted(opened)]
    for host, ts, bad in zip(host_flows.hosts, host_flows.times, malicious):  # the flows' records
        if host is not None:
            label = "malicious" if bad else "benign"
            records.append({"event_type": "flow", "src_ip": host, "label": label, "timestamp": iso(ts)})
    measured = host_level(records)
    replayed = IncidentReplay(host_flows, 300).outcome(alerts, malicious, needed)
    assert replayed["incidents"] == measured["incidents"] == len(opened)
    assert replayed["infected_detected"] == measured["infected_detected"]
    assert replayed["time_to_detect_median_s"] == pytest.approx(measured["time_to_detect_median_s"])
    assert replayed["host_days"] == pytest.approx(measured["host_days"], abs=1e-4)


def test_the_threshold_is_the_fewest_alerts_that_keep_false_incidents_within_the_budget():
    # three hosts seen for a day each: benign windows of host a with 9 and 4 alerts, of b with 2,
    # and host c's malicious window with 3
    hosts, times, alerts, malicious = [], [], [], []
    for host, start, window_alerts, bad in (("a", 0, 9, False), ("a", 900, 4, False), ("b", 0, 2, False),
                                            ("c", 0, 3, True)):  # fmt: skip
        for i in range(window_alerts):
            hosts.append(host), times.append(start + i), alerts.append(True), malicious.append(bad)
    for host in ("a", "b", "c"):  # a last, quiet flow a day later
        hosts.append(host), times.append(86_400.0), alerts.append(False), malicious.append(False)
    host_flows = HostFlows(np.array(hosts, dtype=object), np.array(times), np.zeros(len(hosts), bool))
    alerts, malicious = np.array(alerts), np.array(malicious)
    assert calibrate_incidents(alerts, malicious, host_flows, 300, budget=0.0)["alerts"] == 10
    assert calibrate_incidents(alerts, malicious, host_flows, 300, budget=1 / 3)["alerts"] == 5  # 1 allowed
    lenient = calibrate_incidents(alerts, malicious, host_flows, 300, budget=1.0)  # 3 host-days: 3 allowed
    assert lenient["alerts"] == 1 and lenient["false_incidents"] == 3 and lenient["infected_detected"] == 1
    strict = calibrate_incidents(alerts, malicious, host_flows, 300, budget=0.0)
    assert strict["false_incidents"] == 0 and strict["infected_detected"] == 0 and strict["host_days"] == 3.0
    # every flow of an unseen category counts as an alert: the three quiet windows hold one each
    unseen = HostFlows(host_flows.hosts, host_flows.times, np.ones(len(hosts), bool))
    assert calibrate_incidents(np.zeros(len(hosts), bool), malicious, unseen, 300, budget=1.0)["alerts"] == 2


def test_rows_without_hosts_calibrate_nothing():
    nowhere = HostFlows(np.array([None, None], dtype=object), np.array([1.0, np.nan]), np.zeros(2, bool))
    assert calibrate_incidents(np.ones(2, bool), np.zeros(2, bool), nowhere) is None


def write_points(folder, incidents: dict | None) -> None:
    point = {"fpr": 0.01, "threshold": 0.7, "detection_rate": 0.9}
    if incidents is not None:
        point["incidents"] = incidents
    (folder / operating.OPERATING_POINTS_FILE).write_text(json.dumps({"points": [point]}))


def test_the_sensor_takes_the_incident_threshold_only_for_the_window_it_was_calibrated_for(tmp_path):
    write_points(tmp_path, {"window_seconds": 300.0, "alerts": 7})
    point = chosen_point(tmp_path, None)
    assert (point.threshold, point.incident_alerts) == (0.7, 7)
    assert point.summary["incident_calibration"]["alerts"] == 7
    assert chosen_point(tmp_path, 0.01, incident_seconds=60).incident_alerts is None
    write_points(tmp_path, None)  # a run validated on a random share of rows
    assert chosen_point(tmp_path, None).incident_alerts is None
    with pytest.raises(ConfigError, match="calibrated rates"):
        chosen_point(tmp_path, 0.05)
    write_points(tmp_path, {"window_seconds": 300.0, "alerts": "many"})
    with pytest.raises(DataError, match="not the operating points"):
        chosen_point(tmp_path, None)
