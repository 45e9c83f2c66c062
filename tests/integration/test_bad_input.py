"""Bad bytes, over-long lines and cut archives: training names the line (or counts it under
bad_rows=skip); the detector writes its summary and exits non-zero on a cut archive."""

from __future__ import annotations

import gzip
import json

import pytest

from ids_lightning.cli import main as ids
from ids_lightning.core.errors import MalformedRowError
from ids_lightning.core.fileio import TruncatedFileError, open_text
from tests.helpers import DATA_DIR, NSL_KDD_TEST, NSL_KDD_TRAIN, datamodule
from tools.chaos.lab import Lab


def rows(count: int) -> bytes:
    with open_text(NSL_KDD_TRAIN) as handle:
        return "".join(next(handle) for _ in range(count)).encode()


def data_root(tmp_path, name: str, content: bytes):
    (tmp_path / "nsl_kdd").mkdir()
    (tmp_path / "nsl_kdd" / name).write_bytes(content)
    return tmp_path


@pytest.mark.parametrize(
    ("damage", "line", "reason"),
    [
        (
            lambda b: b[: b.index(b"\n", 5000) + 1] + b"0,tcp,\xff\n" + b[b.index(b"\n", 5000) + 1 :],
            None,
            "not valid UTF-8",
        ),
        (lambda b: b.replace(b"\n", b"\n" + b"q" * 1_100_000 + b"\n", 1), 2, "longer than 1,048,576 characters"),
    ],
)
def test_training_names_the_bad_line_or_counts_it(tmp_path, damage, line, reason):
    root = data_root(tmp_path, "KDDTrain+.txt", damage(rows(300)))
    with pytest.raises(MalformedRowError, match=reason) as info:
        datamodule("nsl_kdd", root, split="random", download=False)
    assert line is None or info.value.line == line
    dm = datamodule("nsl_kdd", root, split="random", download=False, bad_rows="skip")
    assert dm.stats["rows_skipped"] == 1 and reason in dm.stats["rows_skipped_examples"][0]
    assert sum(sum(c.values()) for c in dm.stats["class_counts"].values()) == 300


def test_training_on_a_cut_archive_names_the_last_whole_line(tmp_path):
    root = data_root(tmp_path, "KDDTrain+.txt.gz", gzip.compress(rows(2000))[:-500])
    with pytest.raises(TruncatedFileError, match=r"KDDTrain\+\.txt\.gz: the file ends early, after line \d+"):
        datamodule("nsl_kdd", root, split="random", download=False, bad_rows="skip")


def test_the_detector_writes_its_summary_and_exits_3_on_a_cut_archive(tmp_path, capsys):
    run = Lab(tmp_path / "lab", DATA_DIR).run("nsl_kdd")
    with open_text(NSL_KDD_TEST) as handle:
        text = "".join(next(handle) for _ in range(3000))
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(gzip.compress(text.encode())[:-2000])
    assert ids(["detect", "--run", str(run), "--input", str(cut), "--output", str(tmp_path / "a.jsonl")]) == 3
    summary = json.loads((tmp_path / "a.jsonl.summary.json").read_text())
    assert "ends early" in summary["error"] and 0 < summary["records"] < 3000
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == summary["records"]
    assert "stopped early" in capsys.readouterr().out


def test_a_lone_carriage_return_in_real_rows_costs_its_line_and_no_line_number(tmp_path):
    """On real NSL-KDD and IoT-23 rows, training's reader (fast paths included) and the
    detector's line reader skip the spoilt line by its ``grep -n`` number and read every other."""
    from ids_lightning.datasets import get_spec

    nsl = rows(300).decode().splitlines(True)
    nsl[99] = nsl[99].replace(",tcp,", ",tc\rp,", 1).replace(",udp,", ",ud\rp,", 1)
    with open_text(DATA_DIR / "iot23" / "CTU-IoT-Malware-Capture-42-1.conn.log.labeled.gz") as handle:
        zeek = [next(handle) for _ in range(300)]
    zeek[150] = zeek[150].replace("\t", "\r", 1)
    for dataset, lines, name in (("nsl_kdd", nsl, "KDDTrain+.txt"), ("iot23", zeek, "x.conn.log.labeled")):
        path = tmp_path / name
        path.write_bytes("".join(lines).encode())
        spoilt = next(number for number, line in enumerate(lines, 1) if "\r" in line)
        for engine in ("auto", "python"):
            table = get_spec(dataset).read_file(path, bad_rows="skip", engine=engine)
            assert [line for _, line, _ in table.skipped] == [spoilt]
            assert len(table) == sum(not x.startswith("#") for x in lines) - 1 and table.line.max() == len(lines)


def test_a_full_disk_leaves_the_earlier_alerts_and_summary_and_says_so_in_one_line(tmp_path):
    """``ids detect`` under a 64 KB file-size limit (what a full disk looks like to a writer):
    one line naming the output and what happened, status 2, and the earlier pair untouched."""
    import resource
    import subprocess
    import sys

    run = Lab(tmp_path / "lab", DATA_DIR).run("nsl_kdd")
    source = tmp_path / "rows.txt"
    source.write_text(rows(3000).decode())
    small = tmp_path / "small.txt"
    small.write_text(rows(20).decode())
    alerts = tmp_path / "alerts.jsonl"
    command = [sys.executable, "-m", "ids_lightning", "detect", "--run", str(run), "--output", str(alerts)]
    assert subprocess.run([*command, "--input", str(small)], capture_output=True).returncode == 0
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}

    def file_size_limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))

    done = subprocess.run(
        [*command, "--input", str(source)], capture_output=True, text=True, preexec_fn=file_size_limit
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and f"{alerts}: not written (File too large)" in done.stderr
    assert "an earlier file there is left as it was" in done.stderr
    after = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    assert after == before  # no temporary file left, the earlier alerts and summary as they were
