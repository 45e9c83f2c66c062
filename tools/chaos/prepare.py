"""Probes of ``ids prepare``: flow files with faults, joined logs, streams, and outputs that would
collide, sit under a file, or meet a full disk."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from itertools import chain
from pathlib import Path

from tools.chaos.detector import truncated_gzip
from tools.chaos.lab import (
    BOT_IOT,
    IOT23_CSV,
    NSL_TRAIN,
    ZEEK_OTHER,
    Call,
    Probe,
    Workspace,
    parquet_counts,
    reordered,
)


def prepare(ws: Workspace, inputs: list[Path | str], records: int, *extra: str, **call) -> Call:
    """``ids prepare`` of ``inputs`` into the workspace; a refusal must name the first input."""
    output = ws.folder / "parquet"
    call.setdefault("names", (Path(str(inputs[0])).name,))
    return Call(["prepare", *inputs, "--output", output, *extra], records, count=parquet_counts(output), **call)


def zeek_text(ws: Workspace, extra: str = "", at: int = 20) -> tuple[str, int]:
    header, rows = ws.lab.zeek(300)
    return "".join(header + rows[:at]) + extra + "".join(rows[at:]), 300 + (1 if extra else 0)


def prepare_probes() -> list[Probe]:
    bad_byte = "\udcff\n".encode("utf-8", "surrogateescape").decode("latin-1")

    def zeek(name: str, build: Callable[[Workspace], tuple[bytes | str, int]], *extra: str, refuse=False) -> Probe:
        def make(ws: Workspace) -> Call:
            data, records = build(ws)
            return prepare(
                ws, [ws.file("capture.conn.log.labeled" + (".gz" if "gzip" in name else ""), data)], records, *extra
            )

        return Probe(f"prepare: {name}", "prepare", make, refuse)

    def same_names(ws: Workspace) -> Call:
        text = zeek_text(ws)[0]
        first = ws.file("CTU-X.conn.log.labeled", text)
        second = ws.file("gz/CTU-X.conn.log.labeled.gz", gzip.compress(text.encode()))
        return prepare(ws, [first, second], 600, names=("CTU-X",))

    def joined_other_layout(ws: Workspace) -> tuple[str, int]:
        header, rows = ws.lab.zeek(150)
        other = reordered([*chain(*ws.lab.zeek(150, ZEEK_OTHER))])
        return "".join(header + rows + ["#close\t2019\n"] + other), 300

    def fifo(ws: Workspace) -> Call:
        pipe = ws.folder / "capture.conn.log.labeled"
        os.mkfifo(pipe)
        return prepare(ws, [pipe], 300, feed=(ws.file("source.log", zeek_text(ws)[0]), pipe))

    def output_under_a_file(ws: Workspace) -> Call:
        source = ws.file("capture.conn.log.labeled", zeek_text(ws)[0])
        call = prepare(ws, [source], 300, names=("parquet",))
        call.argv[call.argv.index("--output") + 1] = source / "parquet"
        return call

    def output_link_outside(ws: Workspace) -> Call:
        """A link named like the Parquet file, to a file outside: replaced, never written through."""
        source = ws.file("capture.conn.log.labeled", zeek_text(ws)[0])
        (ws.folder / "parquet").mkdir()
        (ws.folder / "parquet" / "capture.parquet").symlink_to(ws.lab.outside / "victim.txt")
        return prepare(ws, [source], 300)

    def full_disk(ws: Workspace) -> Call:
        lines = ws.lab.lines(NSL_TRAIN, 20000)
        return prepare(
            ws, [ws.file("KDDTrain+.txt", "".join(lines))], 20000, file_size_limit=300_000, names=("parquet",)
        )

    def tab_bot_iot(ws: Workspace) -> Call:
        return prepare(ws, [ws.file("bot.csv", "".join(x.replace(",", "\t") for x in ws.lab.lines(BOT_IOT, 101)))], 100)

    def stray_quote(ws: Workspace) -> Call:
        lines = ws.lab.lines(IOT23_CSV, 201)
        lines[50] = lines[50].replace(",", ',"', 1)
        return prepare(ws, [ws.file("capture.csv", "".join(lines))], 200, "--bad-rows", "skip")

    return [
        zeek("clean Zeek log", lambda ws: zeek_text(ws)),
        Probe("prepare: two inputs, one output name", "prepare", same_names, True),
        zeek(
            "invalid UTF-8, skip", lambda ws: (zeek_text(ws, bad_byte)[0].encode("latin-1"), 301), "--bad-rows", "skip"
        ),
        zeek("invalid UTF-8, error", lambda ws: (zeek_text(ws, bad_byte)[0].encode("latin-1"), 301), refuse=True),
        zeek("2 MB line, skip", lambda ws: zeek_text(ws, "z" * 2_000_000 + "\n"), "--bad-rows", "skip"),
        zeek("a lone carriage return, skip", lambda ws: zeek_text(ws, "1\t2\r3\n"), "--bad-rows", "skip"),
        zeek("truncated gzip", lambda ws: (gzip.compress(zeek_text(ws)[0].encode())[:3000], 300), refuse=True),
        zeek(
            "archive cut inside its first line (gzip)",
            lambda ws: (gzip.compress(zeek_text(ws)[0].encode())[:40], 300),
            refuse=True,
        ),
        zeek(
            "gzip followed by garbage",
            lambda ws: (gzip.compress(zeek_text(ws)[0].encode()) + b"junk" * 100, 300),
            refuse=True,
        ),
        zeek("joined with a capture in another column order", joined_other_layout),
        zeek(
            "a new header without a field", lambda ws: (zeek_text(ws)[0] + "#fields\tts\tuid\n1\t2\n", 302), refuse=True
        ),
        zeek("header and no rows", lambda ws: ("".join(ws.lab.zeek(1)[0]), 0), refuse=True),
        Probe(
            "prepare: a file of no dataset",
            "prepare",
            lambda ws: prepare(ws, [ws.file("notes.txt", "hello\n")], 1),
            True,
        ),
        Probe(
            "prepare: a folder as input",
            "prepare",
            lambda ws: prepare(ws, [ws.folder], 0, names=(ws.folder.name,)),
            True,
        ),
        Probe(
            "prepare: an input that does not exist", "prepare", lambda ws: prepare(ws, [ws.folder / "no.log"], 0), True
        ),
        Probe("prepare: a FIFO with a writer", "prepare", fifo, False),
        Probe("prepare: tab-separated BoT-IoT", "prepare", tab_bot_iot, False),
        Probe("prepare: IoT-23 export with a stray quote, skip", "prepare", stray_quote, False),
        Probe(
            "prepare: truncated NSL-KDD gzip",
            "prepare",
            lambda ws: prepare(
                ws, [ws.file("KDDTrain+.txt.gz", truncated_gzip("".join(ws.lab.lines(NSL_TRAIN, 3000))))], 3000
            ),
            True,
        ),
        Probe("prepare: output under a regular file", "prepare", output_under_a_file, True),
        Probe("prepare: output file a link to a file outside", "prepare", output_link_outside, False),
        Probe("prepare: a full disk (300 KB file-size limit)", "prepare", full_disk, True),
        Probe(
            "prepare: --chunk-rows 0",
            "prepare",
            lambda ws: prepare(
                ws, [ws.file("a.conn.log.labeled", zeek_text(ws)[0])], 300, "--chunk-rows", "0", names=("chunk",)
            ),
            True,
        ),
    ]
