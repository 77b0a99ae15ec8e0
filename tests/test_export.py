"""`sansa export-adapters` and the plugin mechanism, through the CLI."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from sansa_cli import registry
from sansa_cli.artifacts.adapter_file import attach_adapters, load_adapter_tensors, read_adapter_info
from sansa_cli.adapters.base import apply_strategy, build_strategy
from sansa_cli.cli.app import app
from sansa_cli.errors import PluginError
from sansa_cli.artifacts.files import sha256_file
from sansa_cli.artifacts.official import block_dims
from tests.adapters_fixtures import (
    THIRDPARTY_MODULE, TINY, build, encode, images, make_distribution, official_state, perturb,
    write_official, write_training_checkpoint,
)

torch.set_num_threads(1)
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def trained(name="adaptformer", options=None, seed=3):
    sam = build()
    strategy = build_strategy(name, options)
    trainable = apply_strategy(sam, strategy)
    perturb(trainable, seed)
    return sam, strategy, trainable


def test_export_latest_and_best_then_info(tmp_path):
    _, strategy, trainable = trained()
    write_training_checkpoint(tmp_path / "run", "adaptformer", {"bottleneck": 0.3}, trainable)
    _, _, better = trained(seed=4)
    write_training_checkpoint(tmp_path / "run", "adaptformer", {"bottleneck": 0.3}, better,
                              name="best.pt", step=99)
    out = tmp_path / "a.safetensors"
    result = runner.invoke(app, ["export-adapters", str(tmp_path / "run"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    info = read_adapter_info(out)
    assert (info.strategy, info.base_model) == ("adaptformer", TINY)
    assert info.config == dataclasses.asdict(strategy.config) | {"stages": [2, 3]}
    assert info.extra["step"] == "42"
    stored = load_adapter_tensors(out)
    assert all(torch.equal(stored[k], v) for k, v in trainable.items())

    result = runner.invoke(app, ["export-adapters", str(tmp_path / "run"), "--best", "--out",
                                 str(out), "--dtype", "bf16"])
    assert result.exit_code == 0, result.output
    assert read_adapter_info(out).extra["step"] == "99"
    result = runner.invoke(app, ["export-adapters", "--info", str(out)])
    assert result.exit_code == 0
    count = sum(v.numel() for v in trainable.values())
    assert "adaptformer" in result.output and f"{count:,}" in result.output
    assert "BF16" in result.output


def test_export_merged_lora_loads_as_plain_sam2_weights(tmp_path):
    sam, _, trainable = trained("lora", {"rank": 4})
    base = tmp_path / "base.pt"
    torch.save({"model": build().state_dict()}, base)
    write_training_checkpoint(tmp_path / "run", "lora", {"rank": 4}, trainable,
                              sha=sha256_file(base))
    out = tmp_path / "merged.safetensors"
    result = runner.invoke(app, ["export-adapters", str(tmp_path / "run"), "--merge-lora",
                                 "--sam2-checkpoint", str(base), "--out", str(out)])
    assert result.exit_code == 0, result.output
    info = read_adapter_info(out)
    assert info.strategy == "qkv" and info.config["modules"] == ["attn.qkv", "attn.proj"]
    fresh = build()
    attach_adapters(fresh, out, info, base)
    x = images()
    for a, b in zip(encode(sam, x), encode(fresh, x)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_convert_official_hiera_large_file(tmp_path):
    dims = block_dims(144, [2, 6, 36, 4])
    state = official_state(dims, list(range(8, 48)), 0.3)
    src = write_official(tmp_path / "adapter_coco_fold0.pth", state, channel_factor=None)
    out = tmp_path / "coco.safetensors"
    result = runner.invoke(app, ["export-adapters", "--from-official", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    info = read_adapter_info(out)
    assert info.base_model == "sam2_hiera_large" and info.config["bottleneck"] == 0.3
    assert "9,898,385" in result.output
    assert 39_500_000 < out.stat().st_size < 39_700_000  # about 40 MB in fp32


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "sansa_cli", *args], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=120)


def test_bad_input_is_one_error_line(tmp_path):
    official = write_official(tmp_path / "adapter_fss.pth", {})
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not safetensors at all")
    cases = [
        (["export-adapters", str(tmp_path / "missing_run"), "--out", "a.safetensors"],
         "does not exist"),
        (["export-adapters", str(official), "--out", str(tmp_path / "a.safetensors")],
         "use --from-official"),
        (["export-adapters", "--info", str(garbage)], "corrupt or truncated"),
        (["export-adapters", str(tmp_path), "--info", str(garbage)], "exactly one of"),
    ]
    for args, expected in cases:
        result = run_cli(*args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1, result.stderr
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines


@pytest.fixture()
def site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def test_third_party_strategy_through_the_cli(site, tmp_path):
    make_distribution(site, "thirdparty-sansa", {"thirdparty": "sansa_thirdparty:Gain"},
                      ("sansa_thirdparty", THIRDPARTY_MODULE))
    assert "thirdparty" in registry.names("adapter")
    result = runner.invoke(app, ["info", "--sam2", TINY, "--adapter", "thirdparty"])
    assert result.exit_code == 0, result.output
    assert "thirdparty" in result.output and "128" in result.output

    sam, _, trainable = trained("thirdparty", {"init": 1.5})
    write_training_checkpoint(tmp_path / "run", "thirdparty", {"init": 1.5}, trainable)
    out = tmp_path / "tp.safetensors"
    result = runner.invoke(app, ["export-adapters", str(tmp_path / "run"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "thirdparty" in runner.invoke(app, ["export-adapters", "--info", str(out)]).output
    fresh = build()
    attach_adapters(fresh, out, read_adapter_info(out), None)
    x = images()
    assert all(torch.equal(a, b) for a, b in zip(encode(sam, x), encode(fresh, x)))


def test_two_distributions_claiming_one_name(site):
    make_distribution(site, "one-sansa", {"clash": "one_mod:A"})
    make_distribution(site, "two-sansa", {"clash": "two_mod:B"})
    with pytest.raises(PluginError) as err:
        registry.names("adapter")
    message = str(err.value)
    assert "'clash'" in message and "one-sansa 0.1" in message and "two-sansa 0.1" in message


def test_broken_plugin_is_reported_with_its_distribution(site, tmp_path):
    make_distribution(site, "broken-sansa", {"broken": "sansa_broken:X"},
                      ("sansa_broken", "import does_not_exist_anywhere\n"))
    result = run_cli("info", "--sam2", TINY, "--adapter", "broken",
                     env={"PYTHONPATH": f"{site}{os.pathsep}{ROOT}"})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "'broken'" in lines[0] and "broken-sansa 0.1" in lines[0]
    assert "does_not_exist_anywhere" in lines[0]


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(PluginError) as err:
        registry.load("adapter", "adaptformr")
    assert all(name in str(err.value) for name in ("adaptformer", "lora", "mona", "qkv", "full"))
