"""``sansa info --json``: parameter counts, registered plugins and the device, as JSON."""

from __future__ import annotations

import json

import pytest

from sansa_cli import registry
from tests.cli_helpers import assert_one_line_error, run_sansa
from tests.conftest import TINY_YAML, build_tiny


def info_json(args, capsys, monkeypatch) -> dict:
    code, stdout, err = run_sansa(["info", "--json", "--sam2", TINY_YAML, *args], capsys,
                                  monkeypatch)
    assert code == 0, err
    return json.loads(stdout)  # stdout holds the JSON document and nothing else


def test_frozen_sam2_plugins_and_device(capsys, monkeypatch):
    from sansa_cli.core.device import resolve_device
    from sansa_cli.core.sam2_base import count_parameters

    report = info_json([], capsys, monkeypatch)
    assert report["sam2"] == TINY_YAML.stem and report["image_size"] == 256
    assert report["adapter"] is None
    assert report["parameters"] == {"total": count_parameters(build_tiny()), "trainable": 0,
                                    "adapter": 0}
    assert report["plugins"] == {"adapters": registry.names("adapter"),
                                 "datasets": registry.names("dataset")}
    assert report["device"] == str(resolve_device("auto"))


@pytest.mark.parametrize("name", registry.names("adapter"))
def test_counts_add_up_for_every_strategy(name, capsys, monkeypatch):
    """total = SAM2's own parameters + those the adapter adds; trainable = the strategy's."""
    from sansa_cli.adapters.base import apply_strategy, build_strategy
    from sansa_cli.core.sam2_base import count_parameters

    sam = build_tiny()
    base = count_parameters(sam)
    strategy = build_strategy(name)
    trainable = apply_strategy(sam, strategy)
    report = info_json(["--adapter", name], capsys, monkeypatch)
    counts = report["parameters"]
    assert counts["total"] == base + counts["adapter"] == count_parameters(sam)
    assert counts["trainable"] == sum(p.numel() for p in trainable.values()) > 0
    assert report["adapter"] == {"name": name, "config": strategy.config_dict()}


def test_adaptformer_options_reach_the_counts(capsys, monkeypatch):
    narrow = info_json(["--adapter", "adaptformer", "--bottleneck", "0.1"], capsys, monkeypatch)
    wide = info_json(["--adapter", "adaptformer", "--bottleneck", "0.5"], capsys, monkeypatch)
    assert narrow["adapter"]["config"]["bottleneck"] == 0.1
    assert 0 < narrow["parameters"]["adapter"] < wide["parameters"]["adapter"]
    assert wide["parameters"]["adapter"] == wide["parameters"]["trainable"]


def test_adapter_options_need_an_adapter(capsys, monkeypatch):
    code, _, err = run_sansa(["info", "--sam2", TINY_YAML, "--rank", "4"], capsys, monkeypatch)
    assert_one_line_error(code, err, "--adapter NAME")
