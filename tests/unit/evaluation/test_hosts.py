"""Host-level detection from the sensor's records: infected hosts, time to the first incident,
false incidents per host-day."""

from __future__ import annotations

from ids_lightning.evaluation.hosts import host_level


def flow(host: str, second: int, label: str) -> dict:
    return {
        "event_type": "flow",
        "src_ip": host,
        "timestamp": f"2020-01-01T00:{second // 60:02d}:{second % 60:02d}+00:00",
        "label": label,
    }


def incident(host: str, second: int, window_start: str) -> dict:
    return {
        "event_type": "incident",
        "src_ip": host,
        "timestamp": f"2020-01-01T00:{second // 60:02d}:{second % 60:02d}+00:00",
        "incident": {"window_start": window_start, "window_seconds": 300.0},
    }


def test_time_to_detect_and_false_incidents_are_read_per_host():
    records = [
        flow("a", 0, "benign"),
        flow("a", 60, "malicious"),
        incident("a", 90, "2020-01-01T00:00:00+00:00"),  # 30 s after a's first malicious flow
        flow("b", 0, "benign"),
        flow("b", 10, "benign"),
        incident("b", 10, "2020-01-01T00:00:00+00:00"),  # b never did anything malicious
        flow("c", 0, "malicious"),  # infected, never detected
    ]
    result = host_level(records)
    assert (result["hosts"], result["infected_hosts"], result["infected_detected"]) == (3, 2, 1)
    assert result["time_to_detect_median_s"] == 30.0 and result["false_incidents"] == 1
    assert result["host_days"] == round(3 * 300 / 86_400, 4)  # each host at least one window
