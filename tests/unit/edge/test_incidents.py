"""Host incidents: one record when a host's alerts in a window reach the threshold, its further
alerts in the window counted into it, a new window starting afresh, the state round-tripped."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ids_lightning.core.errors import ConfigError
from ids_lightning.core.table import RawTable
from ids_lightning.edge.alerts import ModelInfo, Scored
from ids_lightning.edge.incidents import Incidents

FIELDS = {"timestamp": "ts", "src_ip": "host", "dest_ip": "peer", "dest_port": "port", "uid": "uid"}
MODEL = ModelInfo("run", "0.1.0", "0" * 64)
CLASSES = ["benign", "malicious"]


def flows(hosts, times, alerts):
    n = len(hosts)
    meta = {
        "host": np.array(hosts, dtype=object),
        "ts": np.array(times, dtype=np.float64),
        "peer": np.array([f"10.0.0.{i % 3}" for i in range(n)], dtype=object),
        "port": np.array([float(80 + i % 2) for i in range(n)], dtype=object),
        "uid": np.array([f"C{i}" for i in range(n)], dtype=object),
    }
    table = RawTable(
        numeric=np.zeros((n, 1)),
        categorical=np.zeros((n, 0), dtype=object),
        labels=np.full(n, None, dtype=object),
        numeric_names=["x"],
        categorical_names=[],
        line=np.arange(1, n + 1),
        source=np.full(n, "conn.log", dtype=object),
        meta=meta,
    )
    alert = np.array(alerts, dtype=bool)
    score = np.where(alert, np.linspace(0.6, 0.99, n), 0.1)
    probabilities = np.column_stack([1 - score, score])
    category = np.array(CLASSES, dtype=object)[alert.astype(int)]
    scored = Scored(probabilities, alert.astype(int), score, None, np.zeros(n, bool), alert, np.full(n, None), category)
    return table, scored


def test_an_incident_opens_at_the_threshold_and_counts_the_host_s_later_alerts():
    incidents = Incidents(FIELDS, window_seconds=300, threshold=3, max_hosts=10)
    hosts = ["a", "a", "b", "a", "a", "a", "b"]
    table, scored = flows(hosts, [0, 10, 20, 30, 40, 50, 60], [1, 1, 1, 0, 1, 1, 1])
    written, counted = incidents.update(table, scored, CLASSES, MODEL)
    assert list(written) == [4] and counted == {5}  # host a's third alert opens it; its fourth is counted
    record = written[4]
    assert record["event_type"] == "incident" and record["src_ip"] == "a"
    assert record["incident"]["alerts"] == {"malicious": 3} and record["incident"]["flows"] == 4
    assert record["incident"]["uids"][0] == "C4" and record["timestamp"].startswith("1970-01-01T00:00:40")
    assert incidents.opened[0]["alerts"] == {"malicious": 4} and incidents.opened[0]["flows"] == 5  # final counts


def test_a_new_window_starts_afresh_and_the_state_round_trips():
    incidents = Incidents(FIELDS, window_seconds=60, threshold=2, max_hosts=10)
    table, scored = flows(["a", "a", "a"], [0, 30, 70], [1, 0, 1])
    written, _ = incidents.update(table, scored, CLASSES, MODEL)
    assert written == {}  # one alert in each window
    restored = Incidents(FIELDS, window_seconds=60, threshold=2, max_hosts=10)
    restored.restore(json.loads(json.dumps(incidents.state())))
    table, scored = flows(["a"], [100], [1])
    written, _ = restored.update(table, scored, CLASSES, MODEL)
    assert list(written) == [0] and written[0]["incident"]["window_start"].startswith("1970-01-01T00:01:00")


def test_without_hosts_and_times_there_are_no_incidents_and_bad_settings_are_refused():
    incidents = Incidents({}, 300, 3, 10)
    table, scored = flows(["a"] * 5, range(5), [1] * 5)
    assert not incidents.usable and incidents.update(table, scored, CLASSES, MODEL) == ({}, set())
    with pytest.raises(ConfigError, match="incident window"):
        Incidents(FIELDS, 0, 3, 10)


def test_the_summary_and_the_state_keep_the_latest_incidents_only(monkeypatch):
    import ids_lightning.edge.incidents as module

    monkeypatch.setattr(module, "LISTED", 3)
    incidents = Incidents(FIELDS, window_seconds=300, threshold=1, max_hosts=10)
    table, scored = flows(["a", "b", "c", "d", "e"], [0, 1, 2, 3, 4], [1, 1, 1, 1, 1])
    written, _ = incidents.update(table, scored, CLASSES, MODEL)
    assert len(written) == 5 and [e["host"] for e in incidents.opened] == ["c", "d", "e"]
    assert [e["host"] for e in incidents.state()["opened"]] == ["c", "d", "e"]
