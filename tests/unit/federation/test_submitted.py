"""A run submitted to the SuperLink carries plain settings only: nothing in it chooses what the
server builds, reads its environment or adds keys."""

from __future__ import annotations

import pytest

from ids_lightning.core.errors import ConfigError
from ids_lightning.federation.apps import submitted_overrides


def test_plain_settings_and_option_choices_pass_unchanged():
    text = "federated.rounds=3 model=cnn 'dataset.files=[iot23/a.csv,iot23/b.csv]' federated.strategy=fedprox"
    assert submitted_overrides(text) == text


@pytest.mark.parametrize(
    "override",
    [
        "+dataset.read_options.x._target_=numpy.savetxt",
        "dataset._target_=pathlib.Path.touch",
        "model.net._partial_=true",
        "++federated.rounds=3",
        "~callbacks.novelty",
        "hydra.run.dir=/tmp/elsewhere",
        "dataset.files=${oc.env:SECRET}",
        "federated.rounds",
        "dataset.read_options.x-y=1",
    ],
)
def test_anything_that_builds_reads_or_adds_is_refused(override):
    with pytest.raises(ConfigError, match="refused"):
        submitted_overrides(f"federated.rounds=1 {override}")


def test_a_broken_command_line_is_one_clear_error():
    with pytest.raises(ConfigError, match="not a command line"):
        submitted_overrides("federated.rounds='3")


def test_the_superlink_stays_on_loopback_unless_secured_or_told():
    from ids_lightning.federation.deployment import check_binding

    assert check_binding("127.0.0.1", insecure=True, allow_insecure_remote=False) is None
    assert check_binding("localhost", insecure=True, allow_insecure_remote=False) is None
    assert check_binding("0.0.0.0", insecure=False, allow_insecure_remote=False) is None  # --secure
    with pytest.raises(ConfigError, match="--secure"):
        check_binding("0.0.0.0", insecure=True, allow_insecure_remote=False)
    assert "without TLS" in check_binding("10.1.2.3", insecure=True, allow_insecure_remote=True)
