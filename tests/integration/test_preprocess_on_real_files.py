"""Federated preprocessing on real KDDTrain+ rows: the sites' statistics merge into the pooled fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ids_lightning.core.preprocess import Preprocessor


@pytest.mark.parametrize("scaler", ["minmax", "log_minmax"])
def test_sites_statistics_merge_into_the_fit_on_their_pooled_rows(scaler):
    """Federated preprocessing: each site sends only its statistics (plain JSON), and the merge
    equals fitting on the union of the rows; here three label-skewed sites of real KDDTrain+."""
    from ids_lightning.core.preprocess import site_statistics
    from ids_lightning.core.table import concat
    from ids_lightning.datasets import get_spec
    from tests.helpers import NSL_KDD_TRAIN

    rows = get_spec("nsl_kdd").read_file(NSL_KDD_TRAIN)
    normal = rows.labels == "normal"
    order = np.random.default_rng(0).permutation(len(rows))
    sites = [
        rows.take(np.flatnonzero(normal)[:5000]),  # a site of benign traffic only
        rows.take(np.flatnonzero(~normal)[:3000]),  # a site under attack
        rows.take(order[:2000]),
    ]
    statistics = [json.loads(json.dumps(site_statistics(site, scaler))) for site in sites]  # as sent
    settings = {"dataset": "nsl_kdd", "task": "t", "class_names": ["a", "b"], "scaler": scaler}
    merged = Preprocessor.merge(statistics, **settings)
    assert merged == Preprocessor.fit(concat(sites), **settings)
    alone = Preprocessor.fit(sites[0], **settings)  # one site alone sees less: the merge matters
    assert alone.categories["service"] != merged.categories["service"] and alone.numeric_max != merged.numeric_max
