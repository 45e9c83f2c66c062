"""Probes of ``ids detect``: corrupt NSL-KDD rows, Zeek logs and CSV exports, refused
settings and broken run folders."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

from tools.chaos.lab import BOT_IOT, IOT23_CSV, NSL_TEST, ZEEK, Lab, Probe, detect_counts


def detector_probes(lab: Lab) -> list[Probe]:
    return [*nsl_kdd_probes(lab), *setting_probes(lab), *run_folder_probes(lab), *zeek_probes(lab), *csv_probes(lab)]


def nsl_kdd_probes(lab: Lab) -> list[Probe]:
    """NSL-KDD rows with one fault each, and cut or empty files."""
    nsl = partial(_nsl, lab)
    return [
        nsl("clean", lambda ls: ("".join(ls), 200)),
        nsl(
            "invalid UTF-8 byte",
            lambda ls: (
                b"".join(x.encode() for x in ls[:5])
                + b"0,tcp,\xff\xfe"
                + ls[5][7:].encode()
                + b"".join(x.encode() for x in ls[6:]),
                200,
            ),
        ),
        nsl("over-long line", lambda ls: ("".join(with_line(ls, 3, "x" * 1_500_000 + "\n")), 201)),
        nsl("byte-order mark", lambda ls: (b"\xef\xbb\xbf" + "".join(ls).encode(), 200)),
        nsl("CRLF line ends", lambda ls: ("".join(x.rstrip("\r\n") + "\r\n" for x in ls), 200)),
        nsl(
            "wrong field counts",
            lambda ls: ("".join(with_line(with_line(ls, 2, "a,b,c\n"), 9, ls[0].rstrip() + ",x,y\n")), 202),
        ),
        nsl(
            "NaN, inf and negative values",
            lambda ls: (
                "".join(
                    [
                        ls[0].replace("0,tcp", "nan,tcp", 1),
                        ls[1].replace("0,", "-5,", 1),
                        ls[2].replace("0,", "inf,", 1),
                        *ls[3:],
                    ]
                ),
                200,
            ),
        ),
        nsl("unknown attack name", lambda ls: ("".join(with_line(ls, 4, ls[0].replace(",normal,", ",martian,"))), 201)),
        nsl("unseen category", lambda ls: ("".join(with_line(ls, 4, ls[0].replace(",tcp,", ",quic,", 1))), 201)),
        nsl("unlabelled rows", lambda ls: ("".join(x.rsplit(",", 2)[0] + "\n" for x in ls), 200)),
        nsl("blank lines", lambda ls: ("".join(with_line(with_line(ls, 3, "\n"), 8, "\n")), 202)),
        nsl(
            "NUL bytes",
            lambda ls: (
                "".join(with_line(ls, 6, ls[0].replace(",tcp,", ",tc\x00p,", 1).replace("0,", "0\x00,", 1))),
                201,
            ),
        ),
        nsl("10,000 fields on a line", lambda ls: ("".join(with_line(ls, 6, ",".join(["1"] * 10000) + "\n")), 201)),
        nsl("a line of 200 KB of commas", lambda ls: ("".join(with_line(ls, 6, "," * 200_000 + "\n")), 201)),
        nsl("no newline at the end", lambda ls: ("".join(ls).rstrip("\n"), 200)),
        Probe(
            "nsl_kdd: truncated gzip",
            "detect",
            lambda _: detect_counts(
                lab, "nsl_kdd", lab.file("cut.txt.gz", truncated_gzip("".join(lab.lines(NSL_TEST, 2000)))), 2000
            ),
            True,
        ),
        Probe(
            "nsl_kdd: archive cut inside its first line",
            "detect",
            lambda _: detect_counts(
                lab, "nsl_kdd", lab.file("tiny.txt.gz", truncated_gzip(lab.lines(NSL_TEST, 1)[0])), 1
            ),
            True,
        ),
        Probe(
            "nsl_kdd: empty file", "detect", lambda _: detect_counts(lab, "nsl_kdd", lab.file("empty.txt", ""), 0), True
        ),
        Probe(
            "nsl_kdd: only garbage",
            "detect",
            lambda _: detect_counts(lab, "nsl_kdd", lab.file("junk.txt", "hello\nworld\n" * 30), 60),
            True,
        ),
    ]


def setting_probes(lab: Lab) -> list[Probe]:
    """Settings the detector must refuse."""
    refuse_setting = partial(_refuse_setting, lab)
    return [
        refuse_setting("--chunk-rows 0", detect_call(chunk_rows=0)),
        refuse_setting("--output is the input", detect_call(output=lambda source: source)),
        refuse_setting("--output links to the input", detect_call(output=link_to)),
        refuse_setting("--output is a hard link to the input", detect_call(output=hard_link_to)),
        refuse_setting("--model that does not exist", detect_call(model="model.int4.onnx")),
    ]


def run_folder_probes(lab: Lab) -> list[Probe]:
    """Run folders whose model or preprocessing is broken."""
    broken_run = partial(_broken_run, lab)
    deep = b"[" * 100000 + b"]" * 100000
    return [
        broken_run(
            "class names in another order", edit_preprocess(lambda s: s.update(class_names=s["class_names"][::-1]))
        ),
        broken_run(
            "two classes named in preprocess.json",
            edit_preprocess(lambda s: s.update(class_names=["normal", "attack"])),
        ),
        broken_run("feature count differs", edit_preprocess(onehot_without_names)),
        broken_run("model.onnx missing", lambda f: (f / "model.onnx").unlink()),
        broken_run("model outputs NaN", nan_model),
        broken_run("model.onnx is not ONNX", lambda f: (f / "model.onnx").write_bytes(b"not a model")),
        broken_run("preprocess.json not JSON", raw_preprocess(b"{not json")),
        broken_run("preprocess.json nested 100,000 deep", raw_preprocess(deep)),
        broken_run("preprocess.json with a 5,000-digit integer", raw_preprocess(b'{"version": ' + b"9" * 5000 + b"}")),
        broken_run("preprocess.json not UTF-8", raw_preprocess(b'{"version": "\xff"}')),
        broken_run("preprocess.json with wrong types", edit_preprocess(lambda s: s.update(numeric_min="zero"))),
    ]


def zeek_probes(lab: Lab) -> list[Probe]:
    """Zeek conn logs with one fault each."""
    zeek = partial(_zeek, lab)
    return [
        zeek("clean", lambda h, r: ("".join(h + r), 300)),
        zeek(
            "invalid UTF-8 byte",
            lambda h, r: (
                "".join(h).encode()
                + b"".join(x.encode() for x in r[:10])
                + b"\xff\xfe\xfd\n"
                + b"".join(x.encode() for x in r[10:]),
                301,
            ),
        ),
        zeek("4 MB line without tabs", lambda h, r: ("".join(h + r[:50] + ["y" * 4_000_000 + "\n"] + r[50:]), 301)),
        zeek(
            "comment lines inside",
            lambda h, r: ("".join(h + r[:20] + ["#close\t2020\n"] + r[20:] + ["#close\t2021\n"]), 300),
        ),
        zeek("wrong field count", lambda h, r: ("".join(h + r[:20] + ["a\tb\n"] + r[20:]), 301)),
        zeek(
            "port 70000",
            lambda h, r: (
                "".join([*h, "\t".join([*r[0].split("\t")[:5], "70000", *r[0].split("\t")[6:]]), *r[1:]]),
                300,
            ),
        ),
        zeek(
            "unlabelled live log",
            lambda h, r: (
                "".join(
                    [x.replace("   label   detailed-label", "") if x.startswith("#fields") else x for x in h]
                    + [x.split("   ")[0] + "\n" for x in r]
                ),
                300,
            ),
        ),
        Probe(
            "iot23 zeek: truncated gzip",
            "detect",
            lambda _: detect_counts(
                lab, "iot23", lab.file("cut.conn.log.labeled.gz", truncated_gzip("".join(lab.lines(ZEEK, 3000)))), 3000
            ),
            True,
        ),
    ]


def csv_probes(lab: Lab) -> list[Probe]:
    """IoT-23 CSV exports and BoT-IoT CSVs in other dialects."""
    csv_probe = partial(_csv_probe, lab)
    return [
        csv_probe("clean export", IOT23_CSV, "iot23", lambda h, r: (h + "".join(r), len(r))),
        csv_probe("semicolon export", IOT23_CSV, "iot23", lambda h, r: ((h + "".join(r)).replace(",", ";"), len(r))),
        csv_probe(
            "export with BOM and CRLF",
            IOT23_CSV,
            "iot23",
            lambda h, r: (b"\xef\xbb\xbf" + "".join(x.rstrip("\r\n") + "\r\n" for x in [h, *r]).encode(), len(r)),
        ),
        csv_probe("clean", BOT_IOT, "bot_iot", lambda h, r: (h + "".join(r), 200)),
        csv_probe(
            "tab-separated .csv with CRLF",
            BOT_IOT,
            "bot_iot",
            lambda h, r: ("".join(x.rstrip("\r\n").replace(",", "\t") + "\r\n" for x in [h, *r]), 200),
        ),
        csv_probe(
            "semicolon-separated", BOT_IOT, "bot_iot", lambda h, r: ("".join(x.replace(",", ";") for x in [h, *r]), 200)
        ),
        csv_probe("a lone # line", BOT_IOT, "bot_iot", lambda h, r: (h + "".join(r[:9]) + "#\n" + "".join(r[9:]), 201)),
        csv_probe(
            "invalid UTF-8 byte",
            BOT_IOT,
            "bot_iot",
            lambda h, r: ((h + "".join(r[:9])).encode() + b"e,tcp,\xff\n" + "".join(r[9:]).encode(), 201),
        ),
    ]


def _nsl(lab: Lab, name: str, build: Callable[[list[str]], tuple[bytes | str, int]], refuse=False) -> Probe:
    def action(_):
        data, records = build(lab.lines(NSL_TEST, 200))
        return detect_counts(lab, "nsl_kdd", lab.file(f"{name}.txt", data), records)

    return Probe(f"nsl_kdd: {name}", "detect", action, refuse)


def _zeek(lab: Lab, name: str, build: Callable[[list[str], list[str]], tuple[bytes | str, int]], refuse=False) -> Probe:
    def action(_):
        lines = lab.lines(ZEEK, 308)
        header = [line for line in lines if line.startswith("#")]
        rows = [line for line in lines if not line.startswith("#")][:300]
        data, records = build(header, rows)
        return detect_counts(lab, "iot23", lab.file(f"{name}.conn.log.labeled", data), records)

    return Probe(f"iot23 zeek: {name}", "detect", action, refuse)


def _csv_probe(
    lab: Lab, name: str, source: str, dataset: str, build: Callable[[str, list[str]], tuple[bytes | str, int]]
):
    def action(_):
        lines = lab.lines(source, 201)
        data, records = build(lines[0], lines[1:])
        return detect_counts(lab, dataset, lab.file(f"{name}.csv", data), records)

    return Probe(f"{dataset} csv: {name}", "detect", action, False)


def with_line(lines, index, line):
    return [*lines[:index], line, *lines[index:]]


def _refuse_setting(lab: Lab, name: str, call: Callable[[Path, Path], object]) -> Probe:
    def action(_):
        source = lab.file("rows.txt", "".join(lab.lines(NSL_TEST, 20)))
        call(lab.run("nsl_kdd"), source)

    return Probe(f"nsl_kdd: {name}", "detect", action, True)


def _broken_run(lab: Lab, name: str, change: Callable[[Path], None]) -> Probe:
    from ids_lightning.edge.detector import detect

    def action(_):
        folder = lab.copy_run("nsl_kdd", change)
        source = lab.file("rows.txt", "".join(lab.lines(NSL_TEST, 20)))
        detect(folder, source, source.with_suffix(".jsonl"), progress=False)

    return Probe(f"run folder: {name}", "detect", action, True)


def edit_preprocess(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        state = json.loads((folder / "preprocess.json").read_text())
        edited = edit(state)
        (folder / "preprocess.json").write_text(json.dumps(state if edited is None else edited))

    return change


def raw_preprocess(data: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / "preprocess.json").write_bytes(data)


def detect_call(output: Callable[[Path], Path] = lambda source: source.with_suffix(".jsonl"), **options):
    from ids_lightning.edge.detector import detect

    return lambda run, source: detect(run, source, output(source), progress=False, **options)


def link_to(source: Path) -> Path:
    link = source.with_name("alerts.jsonl")
    link.symlink_to(source)
    return link


def hard_link_to(source: Path) -> Path:
    link = source.with_name("alerts.jsonl")
    os.link(source, link)
    return link


def onehot_without_names(state: dict) -> None:
    state.update(encoding="onehot")
    state.pop("feature_names", None)


def nan_model(folder: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from ids_lightning.core.preprocess import Preprocessor

    pre = Preprocessor.load(folder / "preprocess.json")
    weights = helper.make_tensor("w", TensorProto.FLOAT, [pre.num_features, len(pre.class_names)],
                                 np.full(pre.num_features * len(pre.class_names), np.nan, np.float32))  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "w"], ["probabilities"])],
        "nan",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", pre.num_features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(pre.class_names)])],
        [weights],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), folder / "model.onnx")


def truncated_gzip(text: str) -> bytes:
    whole = gzip.compress(text.encode())
    return whole[: len(whole) // 2]
