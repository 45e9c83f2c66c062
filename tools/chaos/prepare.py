"""Probes of ``ids prepare``: Zeek logs with faults, and outputs that would collide."""

from __future__ import annotations

import gzip
from pathlib import Path

from tools.chaos.lab import (
    BOT_IOT,
    ZEEK,
    Lab,
    Probe,
)


def prepare_probes(lab: Lab) -> list[Probe]:
    from ids_lightning.data.prepare import prepare

    def counted(path: Path, records: int, **options) -> dict:
        (result,) = prepare([path], path.parent / "parquet", **options)
        return {"rows_in": records, "rows_out": result["rows"], "rows_skipped": result["skipped"]}

    def zeek_text(extra: str = "", at: int = 20) -> tuple[str, int]:
        lines = lab.lines(ZEEK, 308)
        header = [x for x in lines if x.startswith("#")]
        rows = [x for x in lines if not x.startswith("#")][:300]
        return "".join(header + rows[:at]) + extra + "".join(rows[at:]), 300 + (1 if extra else 0)

    def same_names(_):
        first = lab.file("CTU-X.conn.log.labeled", zeek_text()[0])
        second = lab.file("CTU-X.conn.log.labeled.gz", gzip.compress(zeek_text()[0].encode()))
        prepare([first, second], lab.root / "same")

    return [
        Probe(
            "prepare: clean Zeek log",
            "prepare",
            lambda _: counted(lab.file("a.conn.log.labeled", zeek_text()[0]), 300),
            False,
        ),
        Probe("prepare: two inputs, one output name", "prepare", same_names, True),
        Probe(
            "prepare: invalid UTF-8, skip",
            "prepare",
            lambda _: counted(
                lab.file(
                    "b.conn.log.labeled",
                    zeek_text("\udcff\n".encode("utf-8", "surrogateescape").decode("latin-1"))[0].encode("latin-1"),
                ),
                301,
                bad_rows="skip",
            ),
            False,
        ),
        Probe(
            "prepare: invalid UTF-8, error",
            "prepare",
            lambda _: counted(
                lab.file(
                    "c.conn.log.labeled",
                    zeek_text("\udcff\n".encode("utf-8", "surrogateescape").decode("latin-1"))[0].encode("latin-1"),
                ),
                301,
            ),
            True,
        ),
        Probe(
            "prepare: 2 MB line, skip",
            "prepare",
            lambda _: counted(
                lab.file("d.conn.log.labeled", zeek_text("z" * 2_000_000 + "\n")[0]), 301, bad_rows="skip"
            ),
            False,
        ),
        Probe(
            "prepare: truncated gzip",
            "prepare",
            lambda _: counted(lab.file("e.conn.log.labeled.gz", gzip.compress(zeek_text()[0].encode())[:3000]), 300),
            True,
        ),
        Probe(
            "prepare: archive cut inside its first line",
            "prepare",
            lambda _: counted(lab.file("f.conn.log.labeled.gz", gzip.compress(zeek_text()[0].encode())[:40]), 300),
            True,
        ),
        Probe("prepare: a file of no dataset", "prepare", lambda _: counted(lab.file("notes.txt", "hello\n"), 1), True),
        Probe(
            "prepare: tab-separated BoT-IoT",
            "prepare",
            lambda _: counted(lab.file("bot.csv", "".join(x.replace(",", "\t") for x in lab.lines(BOT_IOT, 101))), 100),
            False,
        ),
    ]
