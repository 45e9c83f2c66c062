"""Every format of a run-folder file that the project has written stays readable (files from older
commits in tests/fixtures/formats, and the shipped example), and a newer one is refused with a
message that says to upgrade."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ids_lightning.core import density, novelty, operating, preprocess, provenance
from ids_lightning.core.density import BenignDensity
from ids_lightning.core.errors import PreprocessStateError
from ids_lightning.core.formats import check_format
from ids_lightning.core.novelty import Novelty
from ids_lightning.core.operating import chosen_point
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.training.config import PROJECT_ROOT

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "formats"
EXAMPLE = PROJECT_ROOT / "examples" / "nsl_kdd_cnn_lstm"
OLD_RUN = FIXTURES / "66fe8e9"


@pytest.mark.parametrize("folder", [OLD_RUN, FIXTURES / "fc565e1", EXAMPLE], ids=["66fe8e9", "fc565e1", "example"])
def test_preprocess_version_1_of_every_commit_reads(folder):
    state = json.loads((folder / "preprocess.json").read_text())
    assert state["version"] == 1
    loaded = Preprocessor.load(folder / "preprocess.json")
    assert loaded.class_names == ["normal", "DoS", "Probe", "R2L", "U2R"] and loaded.num_features > 0


@pytest.mark.parametrize("folder", [OLD_RUN, EXAMPLE], ids=["66fe8e9", "example"])
def test_novelty_format_0_and_1_read_alike(folder, tmp_path):
    old = json.loads((folder / "novelty.json").read_text())
    assert "format" not in old  # format 0: written before the formats were numbered
    loaded = Novelty.load(folder / "novelty.json")
    loaded.save(tmp_path / "novelty.json")
    assert json.loads((tmp_path / "novelty.json").read_text())["format"] == novelty.FORMAT == 1
    assert Novelty.load(tmp_path / "novelty.json") == loaded


def test_operating_points_format_0_and_1_read_alike(tmp_path):
    assert "format" not in json.loads((OLD_RUN / "operating_points.json").read_text())
    old = chosen_point(OLD_RUN, 0.01)
    operating.save(json.loads((OLD_RUN / "operating_points.json").read_text()), tmp_path)
    assert json.loads((tmp_path / "operating_points.json").read_text())["format"] == operating.FORMAT == 1
    assert chosen_point(tmp_path, 0.01) == old and old.threshold is not None


def test_density_format_1_reads():
    preprocessor = Preprocessor.load(OLD_RUN / "preprocess.json")
    loaded = BenignDensity.load(OLD_RUN / "density.json", preprocessor.num_features)
    assert loaded.threshold > 0 and loaded.density.means.shape[1] == preprocessor.num_features


# each file, its format key and the newest format this version reads
NEWEST = {
    "preprocess.json": ("version", preprocess.FORMAT_VERSION),
    "novelty.json": ("format", novelty.FORMAT),
    "operating_points.json": ("format", operating.FORMAT),
    "density.json": ("format", density.FORMAT),
}


@pytest.mark.parametrize("name", sorted(NEWEST))
def test_a_newer_format_is_refused_with_a_message_to_upgrade(name, tmp_path):
    key, newest = NEWEST[name]
    state = json.loads((OLD_RUN / name).read_text())
    (tmp_path / name).write_text(json.dumps({**state, key: newest + 1}))
    num_features = Preprocessor.load(OLD_RUN / "preprocess.json").num_features
    readers = {
        "preprocess.json": lambda: Preprocessor.load(tmp_path / name),
        "novelty.json": lambda: Novelty.load(tmp_path / name),
        "operating_points.json": lambda: chosen_point(tmp_path, 0.01),
        "density.json": lambda: BenignDensity.load(tmp_path / name, num_features),
    }
    with pytest.raises(
        PreprocessStateError, match=rf"is format {newest + 1}, written by a newer ids-lightning.*upgrade"
    ):
        readers[name]()


def test_provenance_reads_its_format_and_refuses_a_newer_one(tmp_path):
    record = provenance.record({"model": "cnn"}, [OLD_RUN / "novelty.json"], "cpu")
    provenance.write(tmp_path, record)
    assert provenance.read(tmp_path)["data"] == {"novelty.json": provenance.file_sha256(OLD_RUN / "novelty.json")}
    assert provenance.read(tmp_path / "nowhere") is None  # a folder from before provenance
    provenance.write(tmp_path, {**record, "format": provenance.FORMAT + 1})
    with pytest.raises(PreprocessStateError, match="newer"):
        provenance.read(tmp_path)


def test_format_numbers_must_be_whole_numbers():
    assert check_format({}, "x.json", 1) == 0
    for bad in ({"format": "1"}, {"format": True}, {"format": -1}, []):
        with pytest.raises(PreprocessStateError):
            check_format(bad, "x.json", 1)


def test_provenance_from_model_metadata_keeps_only_what_this_project_writes():
    good = provenance.onnx_metadata({"version": "0.1.0", "commit": "a" * 40, "dirty": False,
                                     "config_sha256": "b" * 64, "data_sha256": "c" * 64})  # fmt: skip
    assert provenance.from_onnx_metadata(good) == {"version": "0.1.0", "commit": "a" * 40, "dirty": False,
                                                   "config_sha256": "b" * 64, "data_sha256": "c" * 64}  # fmt: skip
    hostile = {key: json.dumps({"nested": ["x" * 10_000]}) for key in provenance.METADATA.values()}
    hostile[provenance.METADATA["commit"]] = '"<script>"'
    hostile[provenance.METADATA["version"]] = "not json"
    assert set(provenance.from_onnx_metadata(hostile).values()) == {None}
    assert set(provenance.from_onnx_metadata({}).values()) == {None}  # a model from before provenance
