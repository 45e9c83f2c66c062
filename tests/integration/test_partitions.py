"""Federated sites cut from real training rows: disjoint, complete, skewed as configured."""

from __future__ import annotations

import numpy as np
import pytest

from ids_lightning.core import partitions
from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.federation.site import Site, site_rows
from ids_lightning.training.config import instantiate


@pytest.fixture(scope="module")
def nsl_kdd(tmp_path_factory):
    from ids_lightning.training.config import compose
    from tests.helpers import DATA_DIR

    cfg = compose(["experiment=federated"], tmp_path_factory.mktemp("run"), data_dir=DATA_DIR)
    datamodule = instantiate(cfg.dataset, output_dir=None)
    return cfg, datamodule, *datamodule.load_splits()


def _check_cover(parts: list[np.ndarray], rows: int) -> None:
    joined = np.concatenate(parts)
    assert len(joined) == rows and len(np.unique(joined)) == rows  # every row at exactly one site


def test_dirichlet_sites_cover_the_rows_and_skew_more_as_alpha_falls(nsl_kdd):
    _, _, tables, _ = nsl_kdd
    labels = tables["train"].labels.astype(str)
    skew = {}
    for alpha in (0.1, 10.0):
        parts = partitions.dirichlet(labels, 10, alpha, seed=1)
        _check_cover(parts, len(labels))
        assert all(len(p) >= partitions.MIN_SITE_ROWS for p in parts)
        # the share of each site's rows in its largest class: near the global share when IID
        skew[alpha] = np.mean([np.unique(labels[p], return_counts=True)[1].max() / len(p) for p in parts])
        assert [p.tolist() for p in partitions.dirichlet(labels, 10, alpha, seed=1)] == [p.tolist() for p in parts]
    assert skew[0.1] > skew[10.0] + 0.15


def test_family_sites_each_lack_one_attack_family(nsl_kdd):
    _, datamodule, tables, _ = nsl_kdd
    labels = tables["train"].labels.astype(str)
    parts = partitions.by_family(labels, 4, set(datamodule.spec.benign), seed=0)
    _check_cover(parts, len(labels))
    attacks = sorted(set(labels) - {"normal"})
    for site, rows in enumerate(parts):
        seen = set(labels[rows])
        assert attacks[site % len(attacks)] not in seen
        assert "normal" in seen and len(seen) == len(attacks)  # benign and every other family
    with pytest.raises(ConfigError, match="two attack classes"):
        partitions.by_family(np.array(["normal", "attack"] * 20), 2, {"normal"}, seed=0)


def test_column_sites_keep_each_value_together():
    values = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5)
    rows, names = partitions.by_column(values, None)
    assert names == [["a"], ["b"], ["c"], ["d"]]
    rows, names = partitions.by_column(values, 2)
    _check_cover(rows, len(values))
    assert names == [["a"], ["b", "c", "d"]]  # largest first to the emptiest site
    with pytest.raises(ConfigError, match="cannot make 5 sites"):
        partitions.by_column(values, 5)


def test_impossible_partitions_are_refused():
    with pytest.raises(ConfigError, match="alpha must be positive"):
        partitions.dirichlet(np.array(["a", "b"] * 100), 2, 0.0, seed=0)
    with pytest.raises(DataError, match="too few"):
        partitions.dirichlet(np.array(["a", "b"] * 10), 5, 1.0, seed=0)


def test_iot23_sites_are_its_captures(make_config):
    cfg = make_config("experiment=federated", "dataset=iot23")
    datamodule = instantiate(cfg.dataset, output_dir=None)
    tables, _ = datamodule.load_splits()
    rows = site_rows(cfg, datamodule, tables)
    captures = [set(tables["train"].meta["capture"][r].tolist()) for r in rows["train"]]
    assert len(captures) == 6 and all(len(c) == 1 for c in captures)  # the six training captures
    for site, val_rows in enumerate(rows["val"]):  # a site validates on its own capture only
        assert set(tables["val"].meta["capture"][val_rows].tolist()) <= captures[site]
    assert not set().union(*captures) & set(tables["test"].meta["capture"].tolist())


def test_sites_statistics_merge_to_the_centralised_preprocessing(nsl_kdd):
    cfg, _, tables, class_names = nsl_kdd
    sites = [Site(cfg, index, 10) for index in range(10)]
    assert sum(len(site.tables["train"]) for site in sites) == len(tables["train"])
    merged = Preprocessor.merge(
        [site.statistics() for site in sites], dataset="nsl_kdd", task=cfg.dataset.task, class_names=class_names,
        scaler=cfg.dataset.scaler,
    )  # fmt: skip
    central = Preprocessor.fit(
        tables["train"], dataset="nsl_kdd", task=cfg.dataset.task, class_names=class_names, scaler=cfg.dataset.scaler
    )
    assert merged.to_dict() == central.to_dict()
    alone = Preprocessor.merge([sites[0].statistics()], dataset="nsl_kdd", task=cfg.dataset.task,
                               class_names=class_names, scaler=cfg.dataset.scaler)  # fmt: skip
    assert alone.to_dict() != central.to_dict()


def test_a_real_site_keeps_every_row_of_its_own_files(make_config):
    """``partition=whole`` (a site of a real deployment, started as site 3 of 5): its own files'
    training and validation rows, all of them."""
    cfg = make_config("experiment=federated", "federated.partition=whole")
    tables, _ = instantiate(cfg.dataset, output_dir=None).load_splits()
    site = Site(cfg, 3, 5)
    assert {name: len(t) for name, t in site.tables.items()} == {name: len(tables[name]) for name in ("train", "val")}
    with pytest.raises(ConfigError, match="makes 10 sites, but 5 were started"):
        Site(make_config("experiment=federated", "federated.clients=10"), 0, 5)


def test_bot_iot_sites_are_source_addresses_where_the_layout_has_them(make_config):
    full = make_config("experiment=federated", "dataset=bot_iot",
                       "dataset.files=[bot_iot/bot_iot_fullfeatures_normal_ddos_sample.csv*]")  # fmt: skip
    datamodule = instantiate(full.dataset, output_dir=None)
    tables, _ = datamodule.load_splits()
    rows = site_rows(full, datamodule, tables)["train"]
    addresses = [set(tables["train"].meta["saddr"][r].tolist()) for r in rows]
    assert len(rows) == len(set().union(*addresses)) and all(len(a) == 1 for a in addresses)
    reduced = make_config("experiment=federated", "dataset=bot_iot")  # no addresses: label skew instead
    datamodule = instantiate(reduced.dataset, output_dir=None)
    assert len(site_rows(reduced, datamodule, datamodule.load_splits()[0])["train"]) == 10
