"""Adapter files: storage precision, header-only summaries, and every bad-file case."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import save_file

from sansa_cli.artifacts.adapter_file import (
    AdapterInfo, attach_adapters, describe, read_adapter_info, save_adapter_file, tensor_summary,
)
from sansa_cli.errors import AdapterFileError, MissingFileError, PluginError
from tests.adapters_fixtures import TINY, adapted, encode, images
from tests.conftest import build_tiny


def adapter_file(tmp_path, name="adaptformer", options=None, sha="", **save):
    sam, strategy, trainable = adapted(name, options)
    info = AdapterInfo(name, dataclasses.asdict(strategy.config), TINY, sha)
    path = save_adapter_file(tmp_path / f"{name}.safetensors", trainable, info, **save)
    return path, info, {k: v.detach().clone() for k, v in trainable.items()}, sam


def one_line_error(exc_type, fn, *args, **kwargs) -> str:
    with pytest.raises(exc_type) as err:
        fn(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message and message
    return message


def rewrite(path, tensors, metadata):
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize("dtype,tol", [("fp16", 1e-2), ("bf16", 5e-2), ("fp32", 0)])
def test_reduced_precision_storage_loads_and_is_smaller(tmp_path, dtype, tol):
    path32, info, _, sam = adapter_file(tmp_path)
    x = images()
    expected = encode(sam, x)
    path = save_adapter_file(tmp_path / f"{dtype}.safetensors",
                             {k: p for k, p in sam.named_parameters() if p.requires_grad}, info,
                             dtype=dtype)
    summary = tensor_summary(path)
    assert summary["dtypes"] == [{"fp16": "F16", "bf16": "BF16", "fp32": "F32"}[dtype]]
    if dtype != "fp32":
        assert path.stat().st_size < 0.6 * path32.stat().st_size
    fresh = build_tiny()
    attach_adapters(fresh, path, read_adapter_info(path), None)
    assert next(p for p in fresh.parameters() if p.requires_grad).dtype == torch.float32
    for a, b in zip(expected, encode(fresh, x)):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_summary_and_describe_read_only_the_header(tmp_path):
    path, _, tensors, _ = adapter_file(tmp_path)
    summary = tensor_summary(path)
    assert summary["tensors"] == len(tensors)
    assert summary["parameters"] == sum(t.numel() for t in tensors.values())
    text = describe(path)
    assert "adaptformer" in text and f"{summary['parameters']:,}" in text


def test_missing_file(tmp_path):
    one_line_error(MissingFileError, read_adapter_info, tmp_path / "nope.safetensors")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_or_truncated_file(tmp_path, damage):
    path, *_ = adapter_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes({"garbage": b"\x00junk" * 50, "truncated": data[: len(data) // 2],
                      "empty": b""}[damage])
    message = one_line_error(AdapterFileError, read_adapter_info, path)
    assert "corrupt or truncated" in message


def test_not_a_sansa_file_and_unknown_version(tmp_path):
    path, info, tensors, _ = adapter_file(tmp_path)
    rewrite(path, tensors, {"format": "pt"})
    assert "not a sansa adapter file" in one_line_error(AdapterFileError, read_adapter_info, path)
    rewrite(path, tensors, {**info.metadata(), "format_version": "99"})
    message = one_line_error(AdapterFileError, read_adapter_info, path)
    assert "'99'" in message and "upgrade sansa" in message
    rewrite(path, tensors, {**info.metadata(), "config": "{oops"})
    assert "damaged metadata" in one_line_error(AdapterFileError, read_adapter_info, path)


@pytest.mark.parametrize("change", ["missing", "unexpected"])
def test_missing_or_unexpected_tensors(tmp_path, change):
    path, info, tensors, _ = adapter_file(tmp_path)
    key = sorted(tensors)[0]
    if change == "missing":
        del tensors[key]
    else:
        tensors["image_encoder.trunk.blocks.0.adapter.norm.weight"] = torch.ones(16)
    rewrite(path, tensors, info.metadata())
    message = one_line_error(AdapterFileError, attach_adapters, build_tiny(), path, info, None)
    assert f"1 {change}" in message and "check --sam2" in message


def test_wrong_ratio_names_both_ratios(tmp_path):
    path, info, _, _ = adapter_file(tmp_path, options={"bottleneck": 0.5})
    info.config["bottleneck"] = 0.3  # metadata now disagrees with the tensors
    rewrite(path, dict(read_tensors(path)), info.metadata())
    message = one_line_error(AdapterFileError, attach_adapters, build_tiny(), path,
                             read_adapter_info(path), None)
    assert "bottleneck 0.50" in message and "bottleneck 0.28" in message


def test_wrong_rank_names_both_ranks(tmp_path):
    path, info, _, _ = adapter_file(tmp_path, name="lora", options={"rank": 4})
    info.config["rank"] = 2
    rewrite(path, dict(read_tensors(path)), info.metadata())
    message = one_line_error(AdapterFileError, attach_adapters, build_tiny(), path,
                             read_adapter_info(path), None)
    assert "rank 4" in message and "rank 2" in message


@pytest.mark.parametrize("name", ["adaptformer", "lora", "mona"])
def test_wrong_base_size(tmp_path, name):
    path, info, _, _ = adapter_file(tmp_path, name=name)
    smaller = build_tiny(overrides={"model.image_encoder.trunk.embed_dim": 8,
                               "model.image_encoder.neck.backbone_channel_list": [64, 32, 16, 8]})
    message = one_line_error(AdapterFileError, attach_adapters, smaller, path, info, None)
    assert "another SAM2 size" in message and TINY in message


def test_wrong_base_model_name(tmp_path):
    path, info, _, _ = adapter_file(tmp_path)
    message = one_line_error(AdapterFileError, attach_adapters, build_tiny(), path, info, None,
                             base_model="sam2.1_hiera_large")
    assert "--allow-base-mismatch" in message
    attach_adapters(build_tiny(), path, info, None, True, base_model="sam2.1_hiera_large")


def test_base_checkpoint_hash_mismatch(tmp_path):
    base = tmp_path / "base.pt"
    base.write_bytes(b"some other checkpoint")
    path, info, _, _ = adapter_file(tmp_path, sha="0" * 64)
    message = one_line_error(AdapterFileError, attach_adapters, build_tiny(), path, info, base)
    assert "000000000000" in message and "--allow-base-mismatch" in message
    attach_adapters(build_tiny(), path, info, base, allow_base_mismatch=True)


def test_unknown_strategy_or_config_key(tmp_path):
    path, info, tensors, _ = adapter_file(tmp_path)
    bad = dataclasses.replace(info, strategy="nonexistent")
    message = one_line_error(PluginError, attach_adapters, build_tiny(), path, bad, None)
    assert "available: " in message and "adaptformer" in message
    bad = dataclasses.replace(info, config={**info.config, "wings": 2})
    message = one_line_error(AdapterFileError, attach_adapters, build_tiny(), path, bad, None)
    assert "wings" in message
    bad = dataclasses.replace(info, config={**info.config, "stages": [9]})
    message = one_line_error(AdapterFileError, attach_adapters, build_tiny(), path, bad, None)
    assert "stages [9]" in message


def read_tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path)).items()
