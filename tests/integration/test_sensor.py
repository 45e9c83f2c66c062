"""The sensor on real captures: Zeek TSV and Zeek JSON of the same flows give the same records,
every record meets the shipped schema, Community IDs are the library's, and a sensor killed at
random moments and restarted writes every flow exactly once."""

from __future__ import annotations

import json
import time

import jsonschema
import pytest

from ids_lightning.core.fileio import open_text
from ids_lightning.edge.alerts import SCHEMA
from ids_lightning.edge.detector import detect
from tests.helpers import DATA_DIR, NSL_KDD_TEST, PROJECT_ROOT
from tools.chaos.lab import Lab

CAPTURE = DATA_DIR / "iot23" / "CTU-IoT-Malware-Capture-42-1.conn.log.labeled.gz"
EXAMPLE = PROJECT_ROOT / "examples" / "nsl_kdd_cnn_lstm"


@pytest.fixture(scope="module")
def iot_run(tmp_path_factory):
    return Lab(tmp_path_factory.mktemp("lab"), DATA_DIR).run("iot23")


def zeek_json(lines: list[str]) -> list[str]:
    """A Zeek TSV log as Zeek's JSON writer writes it: typed values, unset fields left out."""
    fields = types = None
    out = []
    for line in lines:
        if line.startswith("#fields"):
            fields = [f for part in line.rstrip("\n").split("\t")[1:] for f in part.split("   ")]
        elif line.startswith("#types"):
            types = [t for part in line.rstrip("\n").split("\t")[1:] for t in part.split("   ")]
        elif not line.startswith("#"):
            values = [v for part in line.rstrip("\n").split("\t") for v in part.split("   ")]
            record = {}
            for name, kind, value in zip(fields, types, values):
                if value == "-":
                    continue
                if kind in ("time", "interval"):
                    record[name] = float(value)
                elif kind in ("port", "count"):
                    record[name] = int(value)
                elif kind == "bool":
                    record[name] = value == "T"
                elif kind.startswith("set["):
                    record[name] = [] if value == "(empty)" else value.split(",")
                else:
                    record[name] = value
            out.append(json.dumps(record) + "\n")
    return out


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_zeek_json_and_zeek_tsv_of_the_same_flows_give_the_same_records(iot_run, tmp_path):
    with open_text(CAPTURE) as handle:
        tsv = handle.readlines()
    (tmp_path / "conn.log").write_text("".join(tsv))
    (tmp_path / "conn.json.log").write_text("".join(zeek_json(tsv)))
    summaries = [
        detect(iot_run, tmp_path / name, tmp_path / f"{name}.jsonl", progress=False, all_flows=True)
        for name in ("conn.log", "conn.json.log")
    ]
    assert [s["format"] for s in summaries] == ["zeek", "zeek_json"] and summaries[0]["records"] == 4426
    tsv_records, json_records = (records(tmp_path / f"{name}.jsonl") for name in ("conn.log", "conn.json.log"))
    drop = lambda r: {k: v for k, v in r.items() if k != "input"}  # noqa: E731 - the file and line differ
    assert [drop(r) for r in tsv_records] == [drop(r) for r in json_records]
    assert summaries[0]["accuracy"] == summaries[1]["accuracy"]


def test_a_json_record_without_a_field_it_needs_is_a_counted_line_naming_the_field(iot_run, tmp_path):
    with open_text(CAPTURE) as handle:
        lines = zeek_json([next(handle) for _ in range(58)])
    broken = json.loads(lines[10])
    del broken["id.orig_h"]
    lines[10] = json.dumps(broken) + "\n"
    lines[20] = "{not json\n"
    (tmp_path / "conn.json").write_text("".join(lines))
    summary = detect(iot_run, tmp_path / "conn.json", tmp_path / "a.jsonl", progress=False, all_flows=True)
    assert summary["records"] == 48 and summary["skipped"] == 2
    reasons = {item["line"]: item["reason"] for item in summary["skipped_lines"]}
    assert "lacks ['id.orig_h']" in reasons[11] and "not a JSON record" in reasons[21]


def test_every_record_meets_the_schema_and_carries_the_library_s_community_id(iot_run, tmp_path):
    import communityid

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    detect(iot_run, CAPTURE, tmp_path / "iot.jsonl", progress=False, all_flows=True)
    detect(EXAMPLE, NSL_KDD_TEST, tmp_path / "nsl.jsonl", progress=False, explain=None)  # explained: iot
    engine = communityid.CommunityID()
    for name in ("iot.jsonl", "nsl.jsonl"):
        for record in records(tmp_path / name):
            validator.validate(record)
    written = records(tmp_path / "iot.jsonl")
    assert {"flow", "alert", "incident"} >= {r["event_type"] for r in written} and "incident" in {
        r["event_type"] for r in written
    }  # an untrained net calls much of the capture malicious: its hosts open incidents
    alerts = [r["alert"] for r in written if r["event_type"] == "alert"]
    assert alerts and all("explanation" in a and a["reason"] for a in alerts)  # every alert explained
    assert any(a["explanation"] for a in alerts)  # (an untrained net moves little for some)
    assert all("explanation" not in r["alert"] for r in written if r["event_type"] == "flow")  # only alerts
    assert any("top_features" in r["incident"] for r in written if r["event_type"] == "incident")
    for record in [r for r in written if r["event_type"] != "incident"][:500]:
        flow = communityid.FlowTuple(
            {"tcp": 6, "udp": 17}[record["proto"]],
            record["src_ip"],
            record["dest_ip"],
            record["src_port"],
            record["dest_port"],
        ) if record["proto"] != "icmp" else communityid.FlowTuple.make_icmp(
            record["src_ip"], record["dest_ip"], record["src_port"], record["dest_port"]
        )  # fmt: skip
        assert record["community_id"] == engine.calc(flow)


class Killed(BaseException):
    """What a kill looks like from inside: the process stops wherever it is."""


def test_a_sensor_stopped_mid_batch_goes_on_from_its_last_commit_writing_every_flow_once(tmp_path, monkeypatch):
    """Stopped in the middle of writing a batch, again and again (some of its records on disk
    past the last commit): each restart cuts the output back and goes on, and the output equals
    an uninterrupted run's, line for line."""
    import ids_lightning.edge.detector as detector

    options = {"progress": False, "all_flows": True, "chunk_rows": 500, "threads": 1, "explain": None}
    whole = tmp_path / "whole.jsonl"
    detect(EXAMPLE, NSL_KDD_TEST, whole, state=tmp_path / "whole.state", **options)
    real_records = detector.records
    batches = {"seen": 0, "stop_at": 3}

    def records_until_killed(*args, **kwargs):
        batches["seen"] += 1
        for index, record in enumerate(real_records(*args, **kwargs)):
            if batches["seen"] == batches["stop_at"] and index == 137:
                raise Killed
            yield record

    monkeypatch.setattr(detector, "records", records_until_killed)
    output, kills = tmp_path / "killed.jsonl", 0
    while True:
        batches["seen"] = 0
        try:
            summary = detect(EXAMPLE, NSL_KDD_TEST, output, state=tmp_path / "killed.state", **options)
            break
        except Killed:
            kills += 1
            batches["stop_at"] += 3
    drop = lambda r: {k: v for k, v in r.items() if k != "timestamp"}  # noqa: E731 - NSL-KDD: the scoring time
    assert kills >= 5 and summary["records"] == summary["written"] == 22544
    assert [drop(r) for r in records(output)] == [drop(r) for r in records(whole)]


def test_a_followed_log_is_scored_as_it_grows_and_across_zeek_s_rotation(iot_run, tmp_path):
    """A writer appends to conn.log, renames it (Zeek's rotation), starts a new one and appends
    again while the sensor follows: every flow once, each file's lines numbered on their own."""
    import threading

    with open_text(CAPTURE) as handle:
        lines = handle.readlines()
    header, rows = lines[:8], [line for line in lines if not line.startswith("#")]
    log = tmp_path / "conn.log"
    log.write_text("".join(header + rows[:100]))
    done = threading.Event()

    def zeek():
        for start in range(100, 1000, 300):
            time.sleep(0.3)
            with open(log, "a") as handle:
                handle.write("".join(rows[start : start + 300]))
        log.rename(tmp_path / "conn.2019-01-10.log")
        log.write_text("".join(header + rows[1000:1500]))
        time.sleep(0.3)
        with open(log, "a") as handle:
            handle.write("".join(rows[1500:2000]))
        done.set()

    writer = threading.Thread(target=zeek)
    writer.start()
    output = tmp_path / "alerts.jsonl"
    summary = detect(iot_run, log, output, progress=False, all_flows=True, follow=True, stop=done.is_set)
    writer.join()
    flows = [r for r in records(output) if r["event_type"] != "incident"]
    assert [r["uid"] for r in flows] == [row.split("\t")[1] for row in rows[:2000]]
    assert {r["input"]["file"] for r in flows} == {str(log)}  # the name each line was read under
    assert flows[999]["input"]["line"] == 1008 and flows[1000]["input"]["line"] == 9  # the new file's first row
    assert summary["records"] == 2000 and json.loads(output.with_name("alerts.jsonl.state.json").read_text())


def test_a_restart_after_a_new_zeek_layout_mid_file_reads_on_in_that_layout(iot_run, tmp_path, monkeypatch):
    """Two captures joined, the second under a #fields header of another column order; killed
    after that header: the restart reads on in the second layout (the state keeps its header
    block), and the output equals an uninterrupted run's."""
    import ids_lightning.edge.detector as detector
    from tests.integration.test_iot23 import joined_captures

    joined, _ = joined_captures(tmp_path)
    options = {"progress": False, "all_flows": True, "chunk_rows": 50, "threads": 1}
    whole = tmp_path / "whole.jsonl"
    detect(iot_run, joined, whole, state=tmp_path / "whole.state", **options)
    real_records = detector.records
    batches = {"seen": 0}

    def records_until_killed(*args, **kwargs):
        batches["seen"] += 1
        if batches["seen"] == 9:  # rows 401 to 450: the second capture's, under its own header
            raise Killed
        yield from real_records(*args, **kwargs)

    monkeypatch.setattr(detector, "records", records_until_killed)
    output = tmp_path / "killed.jsonl"
    with pytest.raises(Killed):
        detect(iot_run, joined, output, state=tmp_path / "killed.state", **options)
    state = json.loads((tmp_path / "killed.state").read_text())
    assert state["layout_header"] and state["layout_header"][-1][1].startswith("#fields")
    monkeypatch.setattr(detector, "records", real_records)
    summary = detect(iot_run, joined, output, state=tmp_path / "killed.state", **options)
    assert summary["skipped"] == 0 and summary["records"] == 600
    assert records(output) == records(whole)
    assert sum(r["event_type"] != "incident" for r in records(whole)) == 600
