"""`sansa export-adapters` and the plugin mechanism, through the CLI."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sansa_cli import registry
from sansa_cli.artifacts.adapter_file import (attach_adapters, load_adapter_tensors,
                                              read_adapter_info)
from sansa_cli.artifacts.hashing import sha256_file
from sansa_cli.artifacts.official import block_dims
from sansa_cli.errors import PluginError
from tests.adapters_fixtures import (
    THIRDPARTY_MODULE, TINY, adapted, encode, images, make_distribution, official_state,
    write_official, write_training_checkpoint,
)
from tests.cli_helpers import assert_one_line_error, run_sansa
from tests.conftest import build_tiny


def test_export_latest_and_best_then_info(tmp_path, capsys, monkeypatch):
    _, strategy, trainable = adapted()
    write_training_checkpoint(tmp_path / "run", "adaptformer", {"bottleneck": 0.3}, trainable)
    _, _, better = adapted(seed=4)
    write_training_checkpoint(tmp_path / "run", "adaptformer", {"bottleneck": 0.3}, better,
                              name="best.pt", step=99)
    out = tmp_path / "a.safetensors"
    code, _, err = run_sansa(["export-adapters", tmp_path / "run", "--out", out], capsys,
                             monkeypatch)
    assert code == 0, err
    info = read_adapter_info(out)
    assert (info.strategy, info.base_model) == ("adaptformer", TINY)
    assert info.config == dataclasses.asdict(strategy.config) | {"stages": [2, 3]}
    assert info.extra["step"] == "42"
    stored = load_adapter_tensors(out)
    assert all(torch.equal(stored[k], v) for k, v in trainable.items())

    code, _, err = run_sansa(["export-adapters", tmp_path / "run", "--best", "--out", out,
                              "--dtype", "bf16"], capsys, monkeypatch)
    assert code == 0, err
    assert read_adapter_info(out).extra["step"] == "99"
    code, stdout, err = run_sansa(["export-adapters", "--info", out], capsys, monkeypatch)
    assert code == 0, err
    count = sum(v.numel() for v in trainable.values())
    assert "adaptformer" in stdout and f"{count:,}" in stdout
    assert "BF16" in stdout


def test_export_merged_lora_loads_as_plain_sam2_weights(tmp_path, capsys, monkeypatch):
    sam, _, trainable = adapted("lora", {"rank": 4})
    base = tmp_path / "base.pt"
    torch.save({"model": build_tiny().state_dict()}, base)
    write_training_checkpoint(tmp_path / "run", "lora", {"rank": 4}, trainable,
                              sha=sha256_file(base))
    out = tmp_path / "merged.safetensors"
    code, _, err = run_sansa(["export-adapters", tmp_path / "run", "--merge-lora",
                              "--sam2-checkpoint", base, "--out", out], capsys, monkeypatch)
    assert code == 0, err
    info = read_adapter_info(out)
    assert info.strategy == "qkv" and info.config["modules"] == ["attn.qkv", "attn.proj"]
    fresh = build_tiny()
    attach_adapters(fresh, out, info, base)
    x = images()
    for a, b in zip(encode(sam, x), encode(fresh, x)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


HIERA_T_DIMS = block_dims(96, [1, 2, 7, 2])  # SAM 2.0 Hiera-T; the release adapts stages 2, 3


@pytest.mark.slow  # builds SAM 2.0 Hiera-T twice (for the fingerprint and to load)
def test_official_hiera_t_file_is_inferred_and_loads(tmp_path, capsys, monkeypatch):
    from sansa_cli import load_model
    from sansa_cli.core.sam2_base import build_sam2, resolve_base

    state = official_state(HIERA_T_DIMS, list(range(3, 12)), 0.3)
    src = write_official(tmp_path / "adapter_t.pth", state)
    out = tmp_path / "t.safetensors"
    code, stdout, err = run_sansa(["export-adapters", "--from-official", src, "--out", out],
                                  capsys, monkeypatch)
    assert code == 0, err
    assert "base_model_source inferred from the adapter shapes" in stdout
    info = read_adapter_info(out)
    assert info.base_model == "sam2_hiera_tiny" and info.config["stages"] == [2, 3]

    torch.manual_seed(0)
    base = tmp_path / "sam2_hiera_tiny.pt"
    torch.save({"model": build_sam2(resolve_base("sam2_hiera_tiny")).state_dict()}, base)
    model = load_model(sam2="sam2_hiera_tiny", sam2_checkpoint=base, adapters=out, device="cpu")
    loaded = model.sam.state_dict()
    for key, value in state.items():
        ours = key.removeprefix("sam.").replace("adapter_layer_norm_before", "norm")
        assert torch.equal(loaded[ours], value), ours


def test_sam2_names_the_base_of_an_ambiguous_file(tmp_path, capsys, monkeypatch):
    src = write_official(tmp_path / "stage1.pth", official_state(HIERA_T_DIMS, [1, 2], 0.3))
    out = tmp_path / "s.safetensors"
    code, _, err = run_sansa(["export-adapters", "--from-official", src, "--out", out],
                             capsys, monkeypatch)
    assert_one_line_error(code, err, "fit sam2_hiera_tiny and sam2_hiera_small alike", "--sam2")
    assert not out.exists()
    code, stdout, err = run_sansa(["export-adapters", "--from-official", src, "--sam2", "small",
                                   "--out", out], capsys, monkeypatch)
    assert code == 0, err
    assert "base_model_source named at conversion" in stdout
    info = read_adapter_info(out)
    assert info.base_model == "sam2.1_hiera_small" and info.config["stages"] == [1]


@pytest.mark.slow  # builds Hiera-L (with random weights) for its architecture fingerprint
def test_convert_official_hiera_large_file(tmp_path, capsys, monkeypatch):
    dims = block_dims(144, [2, 6, 36, 4])
    state = official_state(dims, list(range(8, 48)), 0.3)
    src = write_official(tmp_path / "adapter_coco_fold0.pth", state, channel_factor=None)
    out = tmp_path / "coco.safetensors"
    code, stdout, err = run_sansa(["export-adapters", "--from-official", src, "--out", out],
                                  capsys, monkeypatch)
    assert code == 0, err
    info = read_adapter_info(out)
    assert info.base_model == "sam2_hiera_large" and info.config["bottleneck"] == 0.3
    assert "base_model_source inferred" in stdout and "9,898,385" in stdout
    assert 39_500_000 < out.stat().st_size < 39_700_000  # about 40 MB in fp32


@pytest.mark.parametrize("case", ["missing run", "official file as a run", "corrupt file",
                                  "two sources", "out below a file", "out a folder",
                                  "sam2 for a run", "wrong base", "fits no size"])
def test_bad_input_is_one_error_line(case, tmp_path, capsys, monkeypatch):
    official = write_official(tmp_path / "adapter_fss.pth", {})
    hiera_t = write_official(tmp_path / "adapter_t.pth",
                             official_state(HIERA_T_DIMS, list(range(3, 12)), 0.3))
    unknown = write_official(tmp_path / "adapter_u.pth",
                             official_state(block_dims(128, [1, 2, 7, 2]), [3, 4], 0.3))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not safetensors at all")
    out = tmp_path / "a.safetensors"
    (tmp_path / "folder.safetensors").mkdir()
    args, fragment = {
        "missing run": ([tmp_path / "missing_run", "--out", out], "does not exist"),
        "official file as a run": ([official, "--out", out], "use --from-official"),
        "corrupt file": (["--info", garbage], "corrupt or truncated"),
        "two sources": ([tmp_path, "--info", garbage], "exactly one of"),
        "out below a file": (["--from-official", official, "--out", garbage / "a.safetensors"],
                             "is a file"),
        "out a folder": (["--from-official", official, "--out",
                          tmp_path / "folder.safetensors"], "is a folder"),
        "sam2 for a run": ([tmp_path, "--sam2", "tiny", "--out", out],
                           "--sam2 tiny applies to --from-official only"),
        "wrong base": (["--from-official", hiera_t, "--sam2", "sam2_hiera_large", "--out", out],
                       "does not fit sam2_hiera_large: block 3's down_proj.weight has shape "
                       "(57, 384), expected (width, 288)"),
        "fits no size": (["--from-official", unknown, "--out", out],
                         "fits no SAM 2.0 Hiera size"),
    }[case]
    code, _, err = run_sansa(["export-adapters", *args], capsys, monkeypatch)
    assert_one_line_error(code, err, fragment)
    assert not out.exists()


@pytest.fixture()
def site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def test_third_party_strategy_through_the_cli(site, tmp_path, capsys, monkeypatch):
    make_distribution(site, "thirdparty-sansa", {"thirdparty": "sansa_thirdparty:Gain"},
                      ("sansa_thirdparty", THIRDPARTY_MODULE))
    assert "thirdparty" in registry.names("adapter")
    code, stdout, err = run_sansa(["info", "--sam2", TINY, "--adapter", "thirdparty"], capsys,
                                  monkeypatch)
    assert code == 0, err
    assert "thirdparty" in stdout and "128" in stdout

    sam, _, trainable = adapted("thirdparty", {"init": 1.5})
    write_training_checkpoint(tmp_path / "run", "thirdparty", {"init": 1.5}, trainable)
    out = tmp_path / "tp.safetensors"
    code, _, err = run_sansa(["export-adapters", tmp_path / "run", "--out", out], capsys,
                             monkeypatch)
    assert code == 0, err
    assert "thirdparty" in run_sansa(["export-adapters", "--info", out], capsys, monkeypatch)[1]
    fresh = build_tiny()
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


def test_broken_plugin_is_reported_with_its_distribution(site, capsys, monkeypatch):
    make_distribution(site, "broken-sansa", {"broken": "sansa_broken:X"},
                      ("sansa_broken", "import does_not_exist_anywhere\n"))
    code, _, err = run_sansa(["info", "--sam2", TINY, "--adapter", "broken"], capsys, monkeypatch)
    assert_one_line_error(code, err, "'broken'", "broken-sansa 0.1", "does_not_exist_anywhere")


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(PluginError) as err:
        registry.load("adapter", "adaptformr")
    assert all(name in str(err.value) for name in ("adaptformer", "lora", "mona", "qkv", "full"))
