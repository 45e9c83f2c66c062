"""Probes of ``ids detect``: corrupt NSL-KDD rows, Zeek logs and CSV exports, streams, refused
settings and outputs, and broken run folders."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from itertools import chain
from pathlib import Path

from tools.chaos.lab import (
    BOT_IOT,
    IOT23_CSV,
    NSL_TEST,
    ZEEK_OTHER,
    Call,
    Probe,
    Workspace,
    detector_counts,
    reordered,
)

Build = Callable[[list[str]], tuple[bytes | str, int]]


def detector_probes() -> list[Probe]:
    return [
        *nsl_kdd_probes(),
        *stream_probes(),
        *setting_probes(),
        *output_probes(),
        *run_folder_probes(),
        *zeek_probes(),
        *csv_probes(),
    ]


def detect(
    ws: Workspace, dataset: str, source: Path | str, records: int, *extra: str, run: Path | None = None, **call
) -> Call:
    """``ids detect --all`` (every flow written, so rows out are counted) of ``source`` with the
    lab's run of ``dataset`` (or ``run``); a refusal must name the input file unless ``names``
    says otherwise."""
    output = ws.folder / "alerts.jsonl"
    argv = ["detect", "--run", run or ws.lab.run(dataset), "--input", source, "--output", output, "--all", *extra]
    call.setdefault("names", (Path(str(source)).name,))
    return Call(argv, records, count=detector_counts(output), **call)


# --- NSL-KDD rows ---------------------------------------------------------------------------------
def nsl_kdd_probes() -> list[Probe]:
    """NSL-KDD rows with one fault each, and cut, stuck-together or empty files."""
    return [
        _nsl("clean", lambda ls: ("".join(ls), 200)),
        _nsl(
            "invalid UTF-8 byte",
            lambda ls: (
                b"".join(x.encode() for x in ls[:5])
                + b"0,tcp,\xff\xfe"
                + ls[5][7:].encode()
                + b"".join(x.encode() for x in ls[6:]),
                200,
            ),
        ),
        _nsl("over-long line", lambda ls: ("".join(with_line(ls, 3, "x" * 1_500_000 + "\n")), 201)),
        _nsl("byte-order mark", lambda ls: (b"\xef\xbb\xbf" + "".join(ls).encode(), 200)),
        _nsl("CRLF line ends", lambda ls: ("".join(x.rstrip("\r\n") + "\r\n" for x in ls), 200)),
        _nsl("a lone carriage return inside a line", lambda ls: ("".join(with_line(ls, 50, "0,tcp\r" + ls[0])), 201)),
        _nsl("old Mac line ends (CR only)", lambda ls: ("".join(x.rstrip("\n") + "\r" for x in ls), 200), refuse=True),
        _nsl(
            "wrong field counts",
            lambda ls: ("".join(with_line(with_line(ls, 2, "a,b,c\n"), 9, ls[0].rstrip() + ",x,y\n")), 202),
        ),
        _nsl(
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
        _nsl(
            "unknown attack name", lambda ls: ("".join(with_line(ls, 4, ls[0].replace(",normal,", ",martian,"))), 201)
        ),
        _nsl("unseen category", lambda ls: ("".join(with_line(ls, 4, ls[0].replace(",tcp,", ",quic,", 1))), 201)),
        _nsl("unlabelled rows", lambda ls: ("".join(x.rsplit(",", 2)[0] + "\n" for x in ls), 200)),
        _nsl("blank lines", lambda ls: ("".join(with_line(with_line(ls, 3, "\n"), 8, "\n")), 202)),
        _nsl(
            "NUL bytes",
            lambda ls: (
                "".join(with_line(ls, 6, ls[0].replace(",tcp,", ",tc\x00p,", 1).replace("0,", "0\x00,", 1))),
                201,
            ),
        ),
        _nsl("10,000 fields on a line", lambda ls: ("".join(with_line(ls, 6, ",".join(["1"] * 10000) + "\n")), 201)),
        _nsl("a line of 200 KB of commas", lambda ls: ("".join(with_line(ls, 6, "," * 200_000 + "\n")), 201)),
        _nsl("no newline at the end", lambda ls: ("".join(ls).rstrip("\n"), 200)),
        _nsl("empty file", lambda ls: ("", 0), refuse=True),
        _nsl("only garbage", lambda ls: ("hello\nworld\n" * 30, 60), refuse=True),
        _nsl_gz("truncated gzip", lambda text: truncated_gzip(text), refuse=True),
        _nsl_gz("archive cut inside its first line", lambda text: truncated_gzip(text.split("\n")[0]), refuse=True),
        _nsl_gz("gzip followed by garbage", lambda text: gzip.compress(text.encode()) + b"garbage!" * 50, refuse=True),
        _nsl_gz("two gzip members stuck together", lambda text: gzip.compress(text.encode()) * 2, rows=400),
        _nsl_gz("a gzip of nothing", lambda text: gzip.compress(b""), refuse=True, rows=0),
    ]


def _nsl(name: str, build: Build, refuse: bool = False) -> Probe:
    def make(ws: Workspace) -> Call:
        data, records = build(ws.lab.lines(NSL_TEST, 200))
        return detect(ws, "nsl_kdd", ws.file("rows.txt", data), records)

    return Probe(f"nsl_kdd: {name}", "detect", make, refuse)


def _nsl_gz(name: str, compress: Callable[[str], bytes], refuse: bool = False, rows: int = 200) -> Probe:
    def make(ws: Workspace) -> Call:
        text = "".join(ws.lab.lines(NSL_TEST, 200))
        return detect(ws, "nsl_kdd", ws.file("rows.txt.gz", compress(text)), rows)

    return Probe(f"nsl_kdd: {name}", "detect", make, refuse)


# --- streams: standard input, pipes, devices, links ------------------------------------------------
def stream_probes() -> list[Probe]:
    """Inputs that are not plain files: each is read once (no record lost) or refused."""

    def rows(ws: Workspace) -> Path:
        return ws.file("rows.txt", "".join(ws.lab.lines(NSL_TEST, 2000)))

    def fifo(ws: Workspace) -> Call:
        """A FIFO fed by a writer process: what ``zcat log.gz > fifo`` gives the detector."""
        pipe = ws.folder / "flows.fifo"
        os.mkfifo(pipe)
        return detect(ws, "nsl_kdd", pipe, 2000, feed=(rows(ws), pipe))

    def missing_link(ws: Workspace) -> Call:
        link = ws.folder / "gone.txt"
        link.symlink_to(ws.folder / "nowhere.txt")
        return detect(ws, "nsl_kdd", link, 0)

    def big_first_line(ws: Workspace) -> Call:
        """2 GB of NUL bytes and no line end (a sparse file): read 1 MiB at a time, never whole."""
        path = ws.folder / "inputs" / "sparse.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            handle.truncate(2 << 30)
        return detect(ws, "nsl_kdd", path, 1)

    def folder(ws: Workspace) -> Call:
        header, flows = ws.lab.zeek(300)
        for index in range(3):  # rotated logs, oldest first by modification time
            path = ws.file(f"logs/conn.{index}.log", "".join(header + flows[index * 100 : index * 100 + 100]))
            os.utime(path, (1000 + index, 1000 + index))
        return detect(ws, "iot23", ws.folder / "inputs" / "logs", 300)

    def zeek_json(ws: Workspace, damage: Callable[[list[str]], list[str]], records: int) -> Call:
        header, flows = ws.lab.zeek(200)
        fields = next(line for line in header if line.startswith("#fields")).rstrip("\n").split("\t")[1:]
        names = fields[:-1] + fields[-1].split("   ")
        lines = []
        for flow in flows:
            values = flow.rstrip("\n").split("\t")
            values = values[:-1] + values[-1].split("   ")
            lines.append(json.dumps({k: v for k, v in zip(names, values) if v != "-"}) + "\n")
        return detect(ws, "iot23", ws.file("conn.json.log", "".join(damage(lines))), records)

    def state_of_another(ws: Workspace) -> Call:
        call = detect(ws, "nsl_kdd", rows(ws), 2000, "--state", ws.folder / "s.json", names=("s.json",))
        other = {"version": 1, "input": "other.log", "model_sha256": "0" * 64, "output_bytes": 0, "tally": {}}
        other["position"] = {"path": "other.log", "identity": None, "offset": 0, "line": 1}
        (ws.folder / "s.json").write_text(json.dumps(other))
        return call

    def followed_gzip(ws: Workspace) -> Call:
        source = ws.file("rows.txt.gz", gzip.compress("".join(ws.lab.lines(NSL_TEST, 20)).encode()))
        return detect(ws, "nsl_kdd", source, 20, "--follow")

    def broken_json(lines: list[str]) -> list[str]:
        return [*lines[:9], '{"uid": "C1", "ts": 1}\n', "{oops\n", *lines[9:]]

    return [
        Probe("stream: a folder of rotated Zeek logs", "detect", folder, False),
        Probe("stream: Zeek JSON", "detect", lambda ws: zeek_json(ws, lambda ls: ls, 200), False),
        Probe(
            "stream: Zeek JSON with a record lacking fields and one not JSON",
            "detect",
            lambda ws: zeek_json(ws, broken_json, 202),
            False,
        ),
        Probe("stream: --state of another input", "detect", state_of_another, True),
        Probe("stream: --follow on a gzipped file", "detect", followed_gzip, True),
        Probe(
            "stream: standard input (--input -)",
            "detect",
            lambda ws: detect(ws, "nsl_kdd", "-", 2000, stdin=rows(ws)),
            False,
        ),
        Probe("stream: a FIFO with a writer", "detect", fifo, False),
        Probe("stream: a folder as input", "detect", lambda ws: detect(ws, "nsl_kdd", ws.folder, 0), True),
        Probe(
            "stream: a device as input (/dev/zero)", "detect", lambda ws: detect(ws, "nsl_kdd", "/dev/zero", 0), True
        ),
        Probe("stream: a link to nothing", "detect", missing_link, True),
        Probe("stream: a 2 GB first line", "detect", big_first_line, True),
        Probe(
            "stream: an input that does not exist",
            "detect",
            lambda ws: detect(ws, "nsl_kdd", ws.folder / "no.txt", 0),
            True,
        ),
    ]


# --- settings --------------------------------------------------------------------------------------
def setting_probes() -> list[Probe]:
    """Options the detector must refuse before it reads a row."""

    def option(name: str, *extra: str, names: tuple[str, ...]) -> Probe:
        def make(ws: Workspace) -> Call:
            source = ws.file("rows.txt", "".join(ws.lab.lines(NSL_TEST, 20)))
            return detect(ws, "nsl_kdd", source, 20, *extra, names=names)

        return Probe(f"setting: {name}", "detect", make, True)

    return [
        option("--chunk-rows 0", "--chunk-rows", "0", names=("--chunk-rows",)),
        option("--chunk-rows -5", "--chunk-rows", "-5", names=("--chunk-rows",)),
        option("--chunk-rows ten", "--chunk-rows", "ten", names=("--chunk-rows",)),
        option("--threads 100000", "--threads", "100000", names=("--threads",)),
        option("--threads 0", "--threads", "0", names=("--threads",)),
        option("--max-hosts 0", "--max-hosts", "0", names=("--max-hosts",)),
        option("--explain 0", "--explain", "0", names=("--explain",)),
        option("--explain -3", "--explain", "-3", names=("--explain",)),
        option("--explain five", "--explain", "five", names=("--explain",)),
        option("--explain 5 --no-explain", "--explain", "5", "--no-explain", names=("--explain", "--no-explain")),
        option("--model that does not exist", "--model", "model.int4.onnx", names=("model.int4.onnx",)),
        option(
            "--model outside the run folder", "--model", "../../outside/secret.txt", names=("--model", "secret.txt")
        ),
    ]


# --- outputs ---------------------------------------------------------------------------------------
def output_probes() -> list[Probe]:
    """Outputs that are the input, a link, a folder, a device, or on a full disk."""

    def to(name: str, output: Callable[[Workspace, Path], Path], refuse: bool = True, **call) -> Probe:
        def make(ws: Workspace) -> Call:
            source = ws.file("rows.txt", "".join(ws.lab.lines(NSL_TEST, 2000)))
            target = output(ws, source)
            made = detect(ws, "nsl_kdd", source, 2000, names=(target.name,), **call)
            made.argv[made.argv.index("--output") + 1] = target
            made.count = detector_counts(target)
            return made

        return Probe(f"output: {name}", "detect", make, refuse)

    def symlink(ws: Workspace, source: Path) -> Path:
        link = ws.folder / "alerts.jsonl"
        link.symlink_to(source)
        return link

    def hard_link(ws: Workspace, source: Path) -> Path:
        link = ws.folder / "alerts.jsonl"
        os.link(source, link)
        return link

    def link_outside(ws: Workspace, source: Path) -> Path:
        """A link named like the output, to a file outside: replaced, never written through."""
        link = ws.folder / "alerts.jsonl"
        link.symlink_to(ws.lab.outside / "victim.txt")
        return link

    def under_a_file(ws: Workspace, source: Path) -> Path:
        return source / "alerts.jsonl"

    def fifo(ws: Workspace, source: Path) -> Path:
        pipe = ws.folder / "alerts.fifo"
        os.mkfifo(pipe)
        return pipe

    def earlier(ws: Workspace, source: Path) -> Path:
        """An earlier run's alerts and summary, in the guarded folder: a full disk keeps both."""
        ws.guarded.mkdir(parents=True)
        (ws.guarded / "alerts.jsonl").write_text('{"line": 1}\n')
        (ws.guarded / "alerts.jsonl.summary.json").write_text('{"records": 1}\n')
        return ws.guarded / "alerts.jsonl"

    return [
        to("the input itself", lambda ws, source: source),
        to("a link to the input", symlink),
        to("a hard link to the input", hard_link),
        to("a link to a file outside", link_outside, refuse=False),
        to("a folder", lambda ws, source: ws.folder),
        to("under a regular file", under_a_file),
        to("a FIFO", fifo),
        to("a device (/dev/null)", lambda ws, source: Path("/dev/null")),
        to("a full disk (64 KB file-size limit)", earlier, file_size_limit=64_000),
    ]


# --- run folders ------------------------------------------------------------------------------------
def run_folder_probes() -> list[Probe]:
    """Run folders whose model, preprocessing or novelty flag is broken or hostile."""
    deep = b"[" * 100000 + b"]" * 100000
    bomb = b'{"a": ' + b'{"b": ' * 60 + b"1" + b"}" * 60 + b", " + b'"x": "' + b"y" * (65 << 20) + b'"}'
    return [
        _broken_run(
            "class names in another order",
            edit_preprocess(lambda s: s.update(class_names=s["class_names"][::-1])),
            ("preprocess.json", "model.onnx"),
        ),
        _broken_run(
            "two classes named in preprocess.json",
            edit_preprocess(lambda s: s.update(class_names=["normal", "attack"])),
            ("preprocess.json", "model.onnx"),
        ),
        _broken_run("feature count differs", edit_preprocess(onehot_without_names), ("preprocess.json",)),
        _broken_run(
            "window of 100,000 flows",
            edit_preprocess(lambda s: s.update(window=100_000)),
            ("preprocess.json", "window"),
        ),
        _broken_run("model.onnx missing", lambda f: (f / "model.onnx").unlink(), ("model.onnx",)),
        _broken_run("model outputs NaN", nan_model, ("model.onnx",)),
        _broken_run("model outputs integers", integer_model, ("model.onnx",)),
        _broken_run(
            "model.onnx is not ONNX", lambda f: (f / "model.onnx").write_bytes(b"not a model"), ("model.onnx",)
        ),
        _broken_run("model.onnx is a FIFO", lambda f: replace_with_fifo(f / "model.onnx"), ("model.onnx",)),
        _broken_run("preprocess.json not JSON", raw_preprocess(b"{not json"), ("preprocess.json",)),
        _broken_run("preprocess.json nested 100,000 deep", raw_preprocess(deep), ("preprocess.json",)),
        _broken_run("preprocess.json of 65 MB", raw_preprocess(bomb), ("preprocess.json",)),
        _broken_run(
            "preprocess.json with a 5,000-digit integer",
            raw_preprocess(b'{"version": ' + b"9" * 5000 + b"}"),
            ("preprocess.json",),
        ),
        _broken_run("preprocess.json not UTF-8", raw_preprocess(b'{"version": "\xff"}'), ("preprocess.json",)),
        _broken_run(
            "preprocess.json with wrong types",
            edit_preprocess(lambda s: s.update(numeric_min="zero")),
            ("preprocess.json",),
        ),
        _broken_run("preprocess.json with duplicate keys", duplicate_key, ("preprocess.json",)),
        _broken_run(
            "preprocess.json is a FIFO", lambda f: replace_with_fifo(f / "preprocess.json"), ("preprocess.json",)
        ),
        _broken_run("novelty.json is a folder", lambda f: (f / "novelty.json").mkdir(), ("novelty.json",)),
        _broken_run(
            "novelty.json links to nothing",
            lambda f: (f / "novelty.json").symlink_to(f / "gone.json"),
            ("novelty.json",),
        ),
        _broken_run(
            "novelty.json with a NaN threshold",
            novelty('{"threshold": NaN, "fpr": 0.01, "calibration_rows": 10, "score": "max_softmax"}'),
            ("novelty.json",),
        ),
        _broken_run("explain.json is a folder", lambda f: replace_with_folder(f / "explain.json"), ("explain.json",)),
        _broken_run(
            "explain.json links to nothing",
            lambda f: replace_with_link(f / "explain.json", f / "gone.json"),
            ("explain.json",),
        ),
        _broken_run("explain.json is a FIFO", lambda f: replace_with_fifo(f / "explain.json"), ("explain.json",)),
        _broken_run("explain.json of another run", reference("[0.5, 0.5]"), ("explain.json",)),
        _broken_run("explain.json with a NaN", reference("[NaN" + ", 0.0" * 40 + "]"), ("explain.json",)),
        _broken_run("density.json is a folder", lambda f: (f / "density.json").mkdir(), ("density.json",)),
        _broken_run(
            "density.json links to nothing",
            lambda f: (f / "density.json").symlink_to(f / "gone.json"),
            ("density.json",),
        ),
        _broken_run("density.json of another run", density(2, "0.5"), ("density.json",)),
        _broken_run("density.json with a NaN", density(41, "NaN"), ("density.json",)),
        _broken_run("run folder is a file", lambda f: None, ("inputs/run",), folder_is_file=True),
    ]


def _broken_run(
    name: str, change: Callable[[Path], None], names: tuple[str, ...], folder_is_file: bool = False
) -> Probe:
    def make(ws: Workspace) -> Call:
        folder = ws.copy_run("nsl_kdd", change)
        if folder_is_file:
            folder = ws.file("run", "not a folder")  # inputs/run
        source = ws.file("rows.txt", "".join(ws.lab.lines(NSL_TEST, 20)))
        return detect(ws, "nsl_kdd", source, 20, run=folder, names=names)

    return Probe(f"run folder: {name}", "detect", make, True)


def edit_preprocess(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        state = json.loads((folder / "preprocess.json").read_text())
        edited = edit(state)
        (folder / "preprocess.json").write_text(json.dumps(state if edited is None else edited))

    return change


def raw_preprocess(data: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / "preprocess.json").write_bytes(data)


def novelty(text: str) -> Callable[[Path], None]:
    return lambda folder: (folder / "novelty.json").write_text(text)


def reference(values: str) -> Callable[[Path], None]:
    return lambda folder: (folder / "explain.json").write_text('{"reference": ' + values + "}")


def density(features: int, value: str) -> Callable[[Path], None]:
    """A density.json of ``features`` inputs, every mean ``value`` (a JSON number or NaN)."""
    identity = [[1.0 if i == j else 0.0 for j in range(features)] for i in range(features)]
    text = (f'{{"format": 1, "score": "benign_density", "means": [[{", ".join([value] * features)}]], '
            f'"precision": {json.dumps(identity)}, "threshold": 1.0, "fpr": 0.01, "benign_rows": 10}}')  # fmt: skip
    return lambda folder: (folder / "density.json").write_text(text)


def replace_with_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def replace_with_link(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target)


def duplicate_key(folder: Path) -> None:
    """``"task"`` twice, the second one wrong: a last-one-wins reader takes it silently."""
    text = (folder / "preprocess.json").read_text()
    (folder / "preprocess.json").write_text(text.replace("{", '{"task": "binary", ', 1))


def replace_with_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def onehot_without_names(state: dict) -> None:
    state.update(encoding="onehot")
    state.pop("feature_names", None)


def nan_model(folder: Path) -> None:
    _matmul_model(folder, float("nan"), "FLOAT")


def integer_model(folder: Path) -> None:
    """Class "probabilities" as int64: not scores a threshold can be set on."""
    _matmul_model(folder, 1, "INT64")


def _matmul_model(folder: Path, value: float, kind: str) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from ids_lightning.core.preprocess import Preprocessor

    pre = Preprocessor.load(folder / "preprocess.json")
    width, classes = pre.num_features, len(pre.class_names)
    weights = helper.make_tensor("w", TensorProto.FLOAT, [width, classes], np.full(width * classes, value, np.float32))
    nodes = [helper.make_node("MatMul", ["features", "w"], ["scores"])]
    nodes.append(helper.make_node("Cast", ["scores"], ["probabilities"], to=getattr(TensorProto, kind)))
    graph = helper.make_graph(
        nodes,
        "broken",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("probabilities", getattr(TensorProto, kind), ["batch", classes])],
        [weights],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), folder / "model.onnx")


# --- Zeek logs --------------------------------------------------------------------------------------
def zeek_probes() -> list[Probe]:
    """Zeek conn logs with one fault each, joined and rotated logs, and other column layouts."""

    return [
        _zeek("clean", lambda h, r, lab: ("".join(h + r), 300)),
        _zeek(
            "invalid UTF-8 byte",
            lambda h, r, lab: ("".join(h + r[:10]).encode() + b"\xff\xfe\xfd\n" + "".join(r[10:]).encode(), 301),
        ),
        _zeek(
            "4 MB line without tabs", lambda h, r, lab: ("".join(h + r[:50] + ["y" * 4_000_000 + "\n"] + r[50:]), 301)
        ),
        _zeek(
            "comment lines inside",
            lambda h, r, lab: ("".join(h + r[:20] + ["#close\t2020\n"] + r[20:] + ["#close\t2021\n"]), 300),
        ),
        _zeek("wrong field count", lambda h, r, lab: ("".join(h + r[:20] + ["a\tb\n"] + r[20:]), 301)),
        _zeek(
            "port 70000",
            lambda h, r, lab: (
                "".join([*h, "\t".join([*r[0].split("\t")[:5], "70000", *r[0].split("\t")[6:]]), *r[1:]]),
                300,
            ),
        ),
        _zeek(
            "unlabelled live log",
            lambda h, r, lab: (
                "".join(
                    [x.replace("   label   detailed-label", "") for x in h] + [x.split("   ")[0] + "\n" for x in r]
                ),
                300,
            ),
        ),
        _zeek("CRLF line ends", lambda h, r, lab: ("".join(x.rstrip("\n") + "\r\n" for x in h + r), 300)),
        _zeek(
            "a lone carriage return inside a row",
            lambda h, r, lab: ("".join(h + r[:30] + [r[30].replace("\t", "\r", 1)] + r[31:]), 300),
        ),
        _zeek(
            "rotated logs joined (same header twice)",
            lambda h, r, lab: ("".join(h + r[:150] + ["#close\t2021\n"] + h + r[150:]), 300),
        ),
        _zeek(
            "joined logs, columns in another order",
            lambda h, r, lab: ("".join(h + r[:150] + reordered(h + r[150:])), 300),
        ),
        _zeek(
            "joined with another capture, reordered",
            lambda h, r, lab: ("".join(h + r[:150] + reordered([*chain(*lab.zeek(150, ZEEK_OTHER))])), 300),
        ),
        _zeek(
            "a new #separator mid-file",
            lambda h, r, lab: (
                "".join(
                    h
                    + r[:150]
                    + [
                        x.replace("\t", ",") if not x.startswith("#separator") else "#separator \\x2c\n"
                        for x in h + r[150:]
                    ]
                ),
                300,
            ),
        ),
        _zeek(
            "a new header without a field",
            lambda h, r, lab: ("".join(h + r[:150] + reordered(h + r[150:], [*range(7), *range(8, 21)])), 300),
            refuse=True,
            names=("conn.log.labeled:",),
        ),
        _zeek(
            "a #separator that is no character",
            lambda h, r, lab: ("".join(["#separator \\x\n", *h[1:], *r]), 300),
            refuse=True,
            names=("conn.log.labeled:1",),
        ),
        _zeek(
            "no #fields line",
            lambda h, r, lab: ("".join([x for x in h if not x.startswith("#fields")] + r), 300),
            refuse=True,
            names=("conn.log.labeled",),
        ),
        _zeek("header and no rows (a log just rotated)", lambda h, r, lab: ("".join(h), 0)),
        _zeek_gz("truncated gzip", lambda text: truncated_gzip(text)),
    ]


def _zeek(name: str, build, refuse: bool = False, names: tuple[str, ...] = ()) -> Probe:
    def make(ws: Workspace) -> Call:
        header, rows = ws.lab.zeek(300)
        data, records = build(header, rows, ws.lab)
        source = ws.file("flows.conn.log.labeled", data)
        return detect(ws, "iot23", source, records, **({"names": names} if names else {}))

    return Probe(f"iot23 zeek: {name}", "detect", make, refuse)


def _zeek_gz(name: str, compress: Callable[[str], bytes]) -> Probe:
    def make(ws: Workspace) -> Call:
        header, rows = ws.lab.zeek(3000)
        return detect(ws, "iot23", ws.file("flows.conn.log.labeled.gz", compress("".join(header + rows))), 3000)

    return Probe(f"iot23 zeek: {name}", "detect", make, True)


# --- CSV exports ---------------------------------------------------------------------------------------
def csv_probes() -> list[Probe]:
    """IoT-23 CSV exports and BoT-IoT CSVs in other dialects, with stray quotes and label variants."""
    return [
        _csv("clean export", IOT23_CSV, "iot23", lambda h, r: (h + "".join(r), len(r))),
        _csv("semicolon export", IOT23_CSV, "iot23", lambda h, r: ((h + "".join(r)).replace(",", ";"), len(r))),
        _csv(
            "export with BOM and CRLF",
            IOT23_CSV,
            "iot23",
            lambda h, r: (b"\xef\xbb\xbf" + "".join(x.rstrip("\r\n") + "\r\n" for x in [h, *r]).encode(), len(r)),
        ),
        _csv(
            "export with a stray quote",
            IOT23_CSV,
            "iot23",
            lambda h, r: (h + "".join(r[:40]) + r[40].replace(",", ',"', 1) + "".join(r[41:]), len(r)),
        ),
        _csv("clean", BOT_IOT, "bot_iot", lambda h, r: (h + "".join(r), 200)),
        _csv(
            "tab-separated .csv with CRLF",
            BOT_IOT,
            "bot_iot",
            lambda h, r: ("".join(x.rstrip("\r\n").replace(",", "\t") + "\r\n" for x in [h, *r]), 200),
        ),
        _csv(
            "semicolon-separated", BOT_IOT, "bot_iot", lambda h, r: ("".join(x.replace(",", ";") for x in [h, *r]), 200)
        ),
        _csv("a lone # line", BOT_IOT, "bot_iot", lambda h, r: (h + "".join(r[:9]) + "#\n" + "".join(r[9:]), 201)),
        _csv(
            "invalid UTF-8 byte",
            BOT_IOT,
            "bot_iot",
            lambda h, r: ((h + "".join(r[:9])).encode() + b"e,tcp,\xff\n" + "".join(r[9:]).encode(), 201),
        ),
        _csv("a stray quote", BOT_IOT, "bot_iot", lambda h, r: (h + "".join(r[:40]) + '"' + "".join(r[40:]), 200)),
        _csv(
            "a stray quote before 200 KB",
            BOT_IOT,
            "bot_iot",
            lambda h, r: (h + "".join(r[:40]) + '"' + "z" * 200_000 + "\n" + "".join(r[40:]), 201),
        ),
        _csv(
            "labels in other cases (DOS, dos, DoS)",
            BOT_IOT,
            "bot_iot",
            lambda h, r: (h + "".join(x.replace(",DoS,", ",DOS,").replace(",DDoS,", ",dos,") for x in r), 200),
        ),
        _csv("header only", BOT_IOT, "bot_iot", lambda h, r: (h, 0)),
    ]


def _csv(name: str, source: str, dataset: str, build, refuse: bool = False) -> Probe:
    def make(ws: Workspace) -> Call:
        lines = ws.lab.lines(source, 201)
        data, records = build(lines[0], lines[1:])
        return detect(ws, dataset, ws.file("flows.csv", data), records)

    return Probe(f"{dataset} csv: {name}", "detect", make, refuse)


def with_line(lines: list[str], index: int, line: str) -> list[str]:
    return [*lines[:index], line, *lines[index:]]


def truncated_gzip(text: str) -> bytes:
    whole = gzip.compress(text.encode())
    return whole[: len(whole) // 2]
