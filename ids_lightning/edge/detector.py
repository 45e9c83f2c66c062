"""The sensor: score flow logs with a run folder's preprocessing and ONNX model, torch-free, and
write an alert stream a SIEM can ingest.

``ids detect --run RUN --input SOURCE --output alerts.jsonl`` reads SOURCE (a file, plain or
gzipped; ``-`` for standard input; a pipe; a folder of rotated logs; with ``--follow`` a growing
log, across Zeek's rotations: :mod:`ids_lightning.edge.sources`) through the run's dataset spec
(Zeek TSV or JSON conn logs, CSV exports, NSL-KDD rows, ...), scores each flow and writes one
EVE-shaped JSON record per alert (:mod:`ids_lightning.edge.alerts`); ``--all`` writes every flow.
A flow is an alert when its attack score (one minus the benign classes' probability) reaches the
operating point (``--fpr``, from the thresholds the run calibrated on validation rows; without
them, when the predicted class is not benign), or when it is flagged unknown (a category unseen
in training, or novelty past the run's threshold). Malformed lines never stop the stream: they
are counted and listed with their line numbers in the summary (``<output>.summary.json``).

Two ways to write, by what the input is:

- a file read once (the default): the alerts and the summary are written beside their names and
  renamed at the end, the summary first; a failure leaves an earlier pair as it was;
- a sensor (``--follow``, a stream, or ``--state``): the alerts are appended and committed after
  each batch (flushed to disk, then the state file written atomically with the input position,
  the output's length, the hosts' windows and the counters). After a kill at any moment, the
  same command goes on from the last commit: the output is cut back to its committed length and
  the input read again from the committed line, so no flow is scored into it twice or skipped.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.explain import (
    DEFAULT_TOP,
    EXPLAIN_FILE,
    Explainer,
    check_top,
    explanations,
    feature_values,
    features_of,
    load_reference,
)
from ids_lightning.core.fileio import (
    WRITE_ERRNOS,
    OutputError,
    TruncatedFileError,
    atomic_path,
    atomic_write_json,
    read_json_state,
    regular_file,
    same_file,
)
from ids_lightning.core.metrics import macro_scores
from ids_lightning.core.novelty import novelty_scores
from ids_lightning.core.operating import DEFAULT_INCIDENT_ALERTS, INCIDENT_SECONDS, attack_scores, chosen_point
from ids_lightning.core.spec import HEAD_LINES, OTHER, read_head
from ids_lightning.core.table import RawTable
from ids_lightning.edge.alerts import ModelInfo, Scored, dumps, records
from ids_lightning.edge.incidents import Incidents
from ids_lightning.edge.runtime import Run, load_run
from ids_lightning.edge.sources import IDLE, Line, Position, StreamLines, open_lines
from ids_lightning.edge.windows import DEFAULT_MAX_HOSTS, HostWindows

MAX_LISTED_SKIPS = 1000
STATE_VERSION = 1
COMMIT_SECONDS = 0.25  # a sensor commits at least this often while lines keep coming


def true_labels(table: RawTable, run: Run) -> np.ndarray:
    """Each record's class under the run's task (None where the file has no label); labels the
    run folded into ``other`` at training time are folded the same way."""
    labels = run.spec.task_labels(table, run.preprocessor.task)
    classes = run.class_names
    if OTHER in classes:
        labels = np.array([v if v is None or v in classes else OTHER for v in labels], dtype=object)
    return labels


@dataclass
class Tally:
    """What the summary counts, carried in the state file across restarts."""

    records: int = 0
    skipped: int = 0
    skipped_lines: list = field(default_factory=list)
    predicted: dict = field(default_factory=dict)
    alerts: dict = field(default_factory=dict)
    written: int = 0
    unknown: int = 0
    unknown_category: int = 0
    outside_classes: int = 0
    confusion: list = field(default_factory=list)
    formats: list = field(default_factory=list)
    incidents: int = 0
    explained: int = 0
    unlike_benign: int = 0

    def add(self, table: RawTable, scored: Scored, classes: list[str], unseen_category: np.ndarray) -> None:
        self.skipped += len(table.skipped)
        room = max(0, MAX_LISTED_SKIPS - len(self.skipped_lines))
        self.skipped_lines += [{"line": line, "reason": reason} for _, line, reason in table.skipped[:room]]
        if not len(table):
            return
        self.records += len(table)
        self.predicted = dict(Counter(self.predicted) + Counter(classes[b] for b in scored.best))
        self.alerts = dict(Counter(self.alerts) + Counter(scored.category[scored.alert]))
        self.unknown += int(scored.unknown.sum())
        self.unknown_category += int(unseen_category.sum())
        if scored.unlike_benign is not None:
            self.unlike_benign += int(scored.unlike_benign.sum())
        index = {name: i for i, name in enumerate(classes)}
        if not self.confusion:
            self.confusion = [[0] * len(classes) for _ in classes]
        for label, best in zip(scored.labels, scored.best):
            if label is None:
                continue
            if label in index:
                self.confusion[index[label]][int(best)] += 1
            else:
                self.outside_classes += 1


@dataclass
class Options:
    """How the sensor runs: the model file, batch size, threads, hosts kept for windows, every
    flow or alerts only, the operating point's false-alarm rate, follow a growing log, where the
    state lives (None: no state, the output written whole at the end), progress on stderr, and
    a host incident's window and alert threshold."""

    model: str = "model.onnx"
    chunk_rows: int = 20_000
    threads: int | None = None
    max_hosts: int = DEFAULT_MAX_HOSTS
    all_flows: bool = False
    fpr: float | None = None
    follow: bool = False
    state: Path | None = None
    progress: bool = True
    incident_seconds: float = INCIDENT_SECONDS
    incident_alerts: int | None = None  # None: the run's calibration for the window, else the default
    explain: int | None = DEFAULT_TOP  # features explained per alert (None: none)


def detect(
    run_dir: str | Path,
    input_path: str | Path,
    output: str | Path,
    model: str = "model.onnx",
    chunk_rows: int = Options.chunk_rows,
    threads: int | None = None,
    progress: bool = True,
    max_hosts: int = Options.max_hosts,
    *,
    all_flows: bool = False,
    fpr: float | None = None,
    follow: bool = False,
    state: str | Path | None = None,
    incident_seconds: float = Options.incident_seconds,
    incident_alerts: int | None = Options.incident_alerts,
    explain: int | None = Options.explain,
    stop: Callable[[], bool] = lambda: False,
) -> dict:
    """Score ``input_path`` into ``output`` (and ``<output>.summary.json``); return the summary.
    ``stop()`` is asked between batches (a followed log ends only when it says so)."""
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be at least 1, not {chunk_rows}")
    state = Path(state) if state else None
    options = Options(
        model,
        chunk_rows,
        threads,
        max_hosts,
        all_flows,
        fpr,
        follow,
        state,
        progress,
        incident_seconds,
        incident_alerts,
        explain if explain is None else check_top(explain),
    )
    output = Path(output)
    if str(input_path) != "-" and same_file(output, input_path):
        raise DataError(f"--output {output} is the input file (it would be overwritten)")
    lines = open_lines(input_path, follow)
    if options.state is None and (follow or isinstance(lines, StreamLines)):
        options.state = output.with_name(output.name + ".state.json")
    sensor = Sensor(load_run(run_dir, model, threads), options, str(input_path))
    return sensor.sense(lines, output, stop)


class Sensor:
    """One run's scoring of one input: the reader of its current file, the hosts' windows, the
    counters, and the operating point."""

    def __init__(self, run: Run, options: Options, name: str):
        self.run, self.options, self.name = run, options, name
        self.spec, self.classes = run.spec, run.class_names
        self.windows = (
            HostWindows(run.preprocessor, run.spec, options.max_hosts) if run.preprocessor.window > 1 else None
        )
        self.transform = self.windows.transform if self.windows is not None else run.preprocessor.transform
        self.benign = [i for i, name in enumerate(self.classes) if self.spec.is_benign(name)]
        point = chosen_point(run.folder, options.fpr, options.incident_seconds)
        self.threshold, self.operating_point = point.threshold, point.summary
        self.model = ModelInfo.of(run.folder, run.model_path, run.session.get_modelmeta().custom_metadata_map)
        if options.incident_alerts is not None:
            incident_alerts, self.incident_source = options.incident_alerts, "set by --incident-alerts"
        elif point.incident_alerts is not None:
            incident_alerts, self.incident_source = point.incident_alerts, "calibrated on the run's validation captures"
        else:
            incident_alerts = DEFAULT_INCIDENT_ALERTS
            self.incident_source = f"the default: the run calibrated none for {options.incident_seconds:g} s windows"
        self.incidents = Incidents(run.spec.flow_fields, options.incident_seconds, incident_alerts, options.max_hosts)
        self.explainer, self.explain_note = self._explainer(run, options.explain)
        self.tally = Tally()
        self.layout_header: list[tuple[int, str]] = []  # of the file being read, for the state
        self.resumed_header: list[tuple[int, str]] = []  # from the state: fed again on a restart
        self.error: str | None = None
        self.started = time.perf_counter()
        self.committed_at = time.monotonic()

    @staticmethod
    def _explainer(run: Run, top: int | None) -> tuple[Explainer | None, str]:
        """The occlusion explainer of the run's alerts, and what the summary says of it."""
        if top is None:
            return None, "off"
        reference = load_reference(run.folder, run.preprocessor)
        if reference is None:
            return None, f"none: {run.folder} has no {EXPLAIN_FILE} (a run trained before explanations)"
        features = features_of(run.preprocessor, run.spec.feature_groups)
        return Explainer(features, reference, run.preprocessor.window), f"top {top} features of each alert"

    # --- the loop ------------------------------------------------------------------------------
    def sense(self, lines, output: Path, stop: Callable[[], bool]) -> dict:
        state = self.options.state
        start = self._resume(state, output) if state is not None else None
        if state is None:  # a file read once: written whole at the end, or not at all
            try:
                with atomic_path(output) as partial, open(partial, "w", encoding="utf-8") as out:
                    self._read(lines, None, out, lambda: None, stop)
                    summary = self.summary(output)
                    atomic_write_json(output.with_name(output.name + ".summary.json"), summary)
            except OutputError as err:
                done = f" after {self.tally.records:,} records were scored" if self.tally.records else ""
                raise OutputError(err.path, err.error, done) from err
            finally:
                self._end_progress()
            return summary
        if output.exists() and not output.is_file():  # a pipe or device is never written as a stream
            raise OutputError(output, OSError(errno.EEXIST, "not a regular file: a device, pipe or folder is there"))
        if start is None and output.exists():
            output.unlink()  # a fresh sensor run starts a fresh stream
        try:
            with open(output, "a", encoding="utf-8") as out:
                self._read(lines, start, out, lambda: self._commit(lines, out, output), stop)
        except OSError as err:
            if err.errno in WRITE_ERRNOS:  # a full disk: what was committed stays, the state says where
                raise OutputError(output, err, f" after {self.tally.records:,} records were scored") from err
            raise
        finally:
            self._end_progress()
        return self.summary(output)

    def _read(self, lines, start: Position | None, out, commit: Callable[[], None], stop: Callable[[], bool]) -> None:
        """Feed the lines to the reader of their file, score what it gives, write, commit."""
        self.out = out
        reader, head, current = None, [], None

        def commit_here() -> None:  # the state also keeps the header block of the layout in force
            self.layout_header = reader.layout_header if reader is not None else []
            commit()

        try:
            for item in lines.lines(start):
                if item is IDLE:
                    reader = self._begin(head, reader)
                    head = []
                    self._score(reader.take() if reader is not None and reader.pending else None)
                    commit_here()
                    if stop():
                        return
                    continue
                if item.path != current or (item.number == 1 and reader is not None):  # a new file
                    reader = self._begin(head, reader)
                    if reader is not None and reader.pending:
                        self._score(reader.take())
                    reader, head, current = None, [], item.path
                    if item.number > 1:  # a restart inside a file: its reader from its own first lines,
                        reader = self._reader(read_head(item.path), item.path)
                        for number, text in self.resumed_header:  # and the layout in force there
                            reader.feed(number, text)
                if reader is None:
                    head.append(item)
                    if len(head) >= HEAD_LINES:
                        reader, head = self._begin(head, None), []
                    continue
                full = self._feed(reader, item)
                due = self.options.state is not None and time.monotonic() - self.committed_at >= COMMIT_SECONDS
                if full or (due and reader.pending):  # a sensor commits at least every COMMIT_SECONDS
                    self._score(reader.take())
                    commit_here()
        except TruncatedFileError as err:
            self.error = str(err)
        if current is None and start is None:
            raise DataError(f"{self.name}: no line at all (an empty file or stream): nothing to score")
        reader = self._begin(head, reader)
        if reader is not None and reader.pending:
            self._score(reader.take())
        commit_here()

    def _begin(self, head: list[Line], reader):
        """The reader of a file whose first lines are ``head`` (sniffed), fed those lines."""
        if not head:
            return reader
        if head[0].problem:
            raise DataError(f"{head[0].path}:1: {head[0].problem}; not a header or a flow")
        reader = self._reader([line.text for line in head], head[0].path)
        for line in head:
            if self._feed(reader, line):
                self._score(reader.take())
        return reader

    def _reader(self, texts: list[str], path: str):
        """The spec's reader of a file whose first lines are ``texts`` (its format sniffed)."""
        fmt = self.spec.sniff_head(texts, path)
        if fmt not in self.tally.formats:
            self.tally.formats.append(fmt)
        return self.spec.line_reader(texts, path, bad_rows="skip", require_labels=False)

    def _feed(self, reader, line: Line) -> bool:
        """Feed one line; whether the reader holds a full batch."""
        before = reader.feed(line.number, line.text, line.problem)
        if before is not None:  # a new layout began: the rows before it first
            self._score(before)
        return len(reader) >= self.options.chunk_rows

    def _score(self, table: RawTable | None) -> None:
        if table is None:
            return
        if not len(table):
            self.tally.add(table, None, self.classes, np.zeros(0, bool))
            return
        x, unseen_category = self.transform(table)
        probabilities = self.run.score(x)
        broken = ~np.isfinite(probabilities).all(axis=1)
        if broken.any():
            first = int(np.argmax(broken))
            raise DataError(
                f"{self.run.model_path} gives non-finite probabilities for {int(broken.sum())} records "
                f"(first at {table.source[first]}:{int(table.line[first])}): the model is broken"
            )
        scored = self.scored(table, probabilities, unseen_category, x)
        if self.explainer is not None:
            self._explain(table, x, scored, probabilities)
        opened, counted = self.incidents.update(table, scored, self.classes, self.model)
        for row, record in records(
            table, scored, self.classes, self.spec.flow_fields, self.model, self.options.all_flows
        ):
            if row in counted and not self.options.all_flows:
                continue  # an open incident counts this host's further alerts in its window
            self.out.write(dumps(record) + "\n")
            self.tally.written += 1
            if row in opened:
                self.out.write(dumps(opened[row]) + "\n")
                self.tally.incidents += 1
        self.tally.add(table, scored, self.classes, unseen_category)
        self._progress()

    def _explain(self, table: RawTable, x, scored: Scored, probabilities: np.ndarray) -> None:
        """Each alert's top features, for the probability of its category (of its likeliest
        class where only the unknown flag raised it), from one batched call over the alerts."""
        rows = np.flatnonzero(scored.alert)
        if not len(rows):
            return
        index = {name: i for i, name in enumerate(self.classes)}
        target = np.array([index.get(scored.category[i], scored.best[i]) for i in rows])
        attribution = self.explainer.attribute(self.run.score, x[rows], target, probabilities[rows])
        values = feature_values(table, self.explainer.features, rows)
        found = explanations(attribution, self.explainer.features, values, self.options.explain)
        scored.explained = dict(zip(rows.tolist(), found))
        self.tally.explained += len(rows)

    def scored(self, table: RawTable, probabilities: np.ndarray, unseen_category: np.ndarray, x=None) -> Scored:
        """Predictions at the operating point: an alert past the threshold, or unknown (an unseen
        category, novelty past its threshold, or called benign and unlike benign traffic)."""
        novelty = novelty_scores(probabilities) if self.run.novelty is not None else None
        unknown = unseen_category | (novelty > self.run.novelty.threshold) if novelty is not None else unseen_category
        best = probabilities.argmax(axis=1)
        density = unlike_benign = None
        if self.run.density is not None and x is not None:
            density = self.run.density.scores(x)
            unlike_benign = (density > self.run.density.threshold) & np.isin(best, self.benign)
            unknown = unknown | unlike_benign
        score = attack_scores(probabilities, self.benign)
        attack = score > self.threshold if self.threshold is not None else ~np.isin(best, self.benign)
        names = np.array(self.classes, dtype=object)
        category = names[best]
        attacks = np.setdiff1d(np.arange(len(self.classes)), self.benign)
        if len(attacks) and self.benign:  # an alert is named for its likeliest attack class
            likeliest_attack = attacks[probabilities[:, attacks].argmax(axis=1)]
            category[attack] = names[likeliest_attack[attack]]
        category[unknown & ~attack] = "unknown"  # raised by the unknown flag alone
        return Scored(
            probabilities,
            best,
            score,
            novelty,
            unknown,
            attack | unknown,
            true_labels(table, self.run),
            category,
            density=density,
            unlike_benign=unlike_benign,
        )

    # --- state ---------------------------------------------------------------------------------
    def _commit(self, lines, out, output: Path) -> None:
        """Alerts on disk first, then the state that says where they end: a kill between the two
        repeats, on restart, what was scored after the last state, never more."""
        out.flush()
        os.fsync(out.fileno())
        self.committed_at = time.monotonic()
        state = {
            "version": STATE_VERSION,
            "input": self.name,
            "run": str(self.run.folder),
            "model_sha256": self.model.sha256,
            "output_bytes": out.tell(),
            "position": lines.position.as_dict(),
            "tally": asdict(self.tally),
            "windows": self.windows.state() if self.windows is not None else None,
            "incidents": self.incidents.state(),
            "layout_header": self.layout_header,
        }
        atomic_write_json(output.with_name(output.name + ".summary.json"), self.summary(output))
        atomic_write_json(self.options.state, state)

    def _resume(self, path: Path, output: Path) -> Position | None:
        """The committed position of an earlier run of this sensor, its output cut back to what
        was committed, its counters and windows restored; None for a first run."""
        if not os.path.lexists(path):
            return None
        try:
            state = read_json_state(regular_file(path, "state file"))
            if state["version"] != STATE_VERSION:
                raise ValueError(f"version {state['version']}")
            known = (state["input"], state["model_sha256"])
            position = Position.from_dict(state["position"])
            tally = Tally(**state["tally"])
            committed = int(state["output_bytes"])
            resumed_header = [(int(number), str(text)) for number, text in state.get("layout_header") or []]
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{path}: not a sensor state this project wrote ({err})") from err
        if known != (self.name, self.model.sha256):
            raise DataError(
                f"{path}: the state of another input or model ({known[0]}); remove it or choose another --state"
            )
        if not output.is_file() or output.stat().st_size < committed:
            raise DataError(
                f"{output}: shorter than its state {path} says was committed; remove the state to start over"
            )
        with open(output, "r+b") as handle:
            handle.truncate(committed)  # what was written after the last commit is scored again
        self.tally, self.resumed_header = tally, resumed_header
        if self.windows is not None and state.get("windows"):
            self.windows.restore(state["windows"])
        if state.get("incidents"):
            self.incidents.restore(state["incidents"])
        return position

    # --- the summary ---------------------------------------------------------------------------
    def summary(self, output: Path) -> dict:
        seconds = time.perf_counter() - self.started
        tally = self.tally
        summary = {
            "input": self.name,
            "format": "+".join(tally.formats) if tally.formats else None,
            "run": str(self.run.folder),
            "model": self.run.model_path.name,
            "model_trained_with": self.model.trained_with,
            "output": str(output),
            "records": tally.records,
            "skipped": tally.skipped,
            "skipped_lines": tally.skipped_lines,
            "written": tally.written,
            "predicted": tally.predicted,
            "alerts": tally.alerts,
            "operating_point": self.operating_point,
            "incidents": tally.incidents,
            "incident_rule": (
                f"{self.incidents.threshold} alerts from one source host in {self.incidents.window_seconds:g} s "
                f"({self.incident_source})"
                if self.incidents.usable
                else "none: the dataset's records name no source host and time"
            ),
            "incident_list": self.incidents.opened,
            "explanations": self.explain_note,
            "explained_alerts": tally.explained,
            "unknown_category_records": tally.unknown_category,
            "unknown_records": tally.unknown,
            **({"novelty_threshold": self.run.novelty.threshold} if self.run.novelty is not None else {}),
            **(
                {"density_threshold": self.run.density.threshold, "unlike_benign_records": tally.unlike_benign}
                if self.run.density is not None
                else {}
            ),
            "window": self.run.preprocessor.window,
            **({"hosts_tracked": self.windows.tracked, "hosts_evicted": self.windows.evicted} if self.windows else {}),
            "seconds": round(seconds, 3),
            "records_per_s": round(tally.records / seconds, 1) if seconds > 0 else None,
        }
        if self.options.state is not None:
            summary["state"] = str(self.options.state)
        if self.error:
            summary["error"] = self.error
        confusion = np.array(tally.confusion, dtype=np.int64) if tally.confusion else np.zeros((0, 0), np.int64)
        if confusion.sum():
            scores = macro_scores(confusion)
            summary |= {
                "labelled_records": int(confusion.sum()),
                "labels_outside_classes": tally.outside_classes,
                "accuracy": scores["acc"],
                "f1_macro": scores["f1_macro"],
            }
        return summary

    def _progress(self) -> None:
        if self.options.progress:
            rate = self.tally.records / max(time.perf_counter() - self.started, 1e-9)
            print(
                f"\rscored {self.tally.records:,} records ({self.tally.skipped:,} skipped, "
                f"{self.tally.written:,} written), {rate:,.0f} records/s",
                end="",
                file=sys.stderr,
            )

    def _end_progress(self) -> None:
        if self.options.progress and self.tally.records:
            print(file=sys.stderr)


def print_summary(summary: dict) -> None:
    print(
        f"{summary['records']:,} records scored from {summary['input']} ({summary['format']}) "
        f"in {summary['seconds']:.1f} s ({summary['records_per_s'] or 0:,} records/s); "
        f"{summary['written']:,} records written to {summary['output']}"
    )
    point = summary["operating_point"]
    rule = point["rule"] + (
        f" {point['threshold']:.4f} (false alarms {point['fpr']:.1%} of benign flows)" if "fpr" in point else ""
    )
    print(
        f"alerts ({rule}, or unknown): "
        + (", ".join(f"{k} {v:,}" for k, v in sorted(summary["alerts"].items())) or "none")
    )
    print(f"records with a category unseen in training: {summary['unknown_category_records']:,}")
    if "novelty_threshold" in summary:
        print(
            f"unknown records (an unseen category, or novelty above {summary['novelty_threshold']:.4f}): "
            f"{summary['unknown_records']:,}"
        )
    if "density_threshold" in summary:
        print(
            f"called benign but unlike benign traffic (density above {summary['density_threshold']:.4g}, "
            f"flagged unknown): {summary['unlike_benign_records']:,}"
        )
    print(f"host incidents ({summary['incident_rule']}): {summary['incidents']:,}")
    if "hosts_tracked" in summary:
        print(
            f"windows of {summary['window']} flows: {summary['hosts_tracked']:,} source hosts tracked at the end, "
            f"{summary['hosts_evicted']:,} forgotten (least recently seen, over --max-hosts)"
        )
    print(f"skipped lines: {summary['skipped']:,}")
    for item in summary["skipped_lines"][:20]:
        print(f"  line {item['line']}: {item['reason']}")
    if summary["skipped"] > 20:
        print(f"  ... all listed (up to {MAX_LISTED_SKIPS}) in the summary JSON")
    if "accuracy" in summary:
        print(
            f"labelled records: {summary['labelled_records']:,}; accuracy {summary['accuracy']:.4f}, "
            f"macro-F1 {summary['f1_macro']:.4f}"
            + (
                f"; {summary['labels_outside_classes']:,} labels outside the run's classes"
                if summary["labels_outside_classes"]
                else ""
            )
        )
    if "error" in summary:
        print(f"stopped early: {summary['error']}; {summary['records']:,} records were scored")
