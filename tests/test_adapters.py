"""Every registered adapter strategy: trainable set, no-op at init, exact save/load, errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sansa_cli import registry
from sansa_cli.artifacts.adapter_file import (
    AdapterInfo, attach_adapters, read_adapter_info, save_adapter_file,
)
from sansa_cli.adapters.base import apply_strategy, build_strategy
from sansa_cli.errors import UserInputError
from tests.adapters_fixtures import MATCHES_NOTHING, TINY, build, encode, images, perturb, same

torch.set_num_threads(1)

STRATEGIES = registry.names("adapter")


def test_builtins_are_registered():
    assert {"adaptformer", "lora", "mona", "qkv", "full"} <= set(STRATEGIES)


@pytest.mark.parametrize("name", STRATEGIES)
def test_config_fields_have_help(name):
    cls = registry.load("adapter", name)
    for f in dataclasses.fields(cls.Config):
        assert f.metadata.get("help"), f"{name}.{f.name} has no help"


@pytest.mark.parametrize("name", STRATEGIES)
def test_only_the_strategy_parameters_train(name):
    sam = build()
    strategy = build_strategy(name)
    trainable = apply_strategy(sam, strategy)
    assert trainable
    named = dict(sam.named_parameters())
    assert set(trainable) <= set(named), "keys must be the model's own parameter paths"
    for key, param in named.items():
        assert param.requires_grad == (key in trainable), key
        if key in trainable:
            assert trainable[key] is param


@pytest.mark.parametrize("name", STRATEGIES)
def test_fresh_strategy_leaves_outputs_unchanged(name):
    sam, x = build(), images()
    before = encode(sam, x)
    apply_strategy(sam, build_strategy(name))
    assert same(before, encode(sam, x))


@pytest.mark.parametrize("name", STRATEGIES)
def test_save_then_load_into_a_fresh_model_reproduces_outputs(name, tmp_path):
    sam, x = build(), images()
    strategy = build_strategy(name)
    trainable = apply_strategy(sam, strategy)
    plain = encode(build(), x)
    perturb(trainable)
    expected = encode(sam, x)
    assert not same(plain, expected), "the perturbation must change the outputs"
    info = AdapterInfo(name, dataclasses.asdict(strategy.config), TINY, "ab" * 32,
                       {"model.pred_obj_scores": False}, {"note": "hello"})
    path = save_adapter_file(tmp_path / "a.safetensors", trainable, info)

    loaded = read_adapter_info(path)
    assert loaded.strategy == name and loaded.base_model == TINY
    assert strategy.Config(**loaded.config) == strategy.config
    assert loaded.base_checkpoint_sha256 == "ab" * 32
    assert loaded.base_overrides == {"model.pred_obj_scores": False}
    assert loaded.extra == {"note": "hello"}

    fresh = build()
    restored, _ = attach_adapters(fresh, path, loaded, None)
    assert restored.config == strategy.config
    assert same(expected, encode(fresh, x))


@pytest.mark.parametrize("name", STRATEGIES)
def test_options_matching_no_module_are_errors(name):
    cls = registry.load("adapter", name)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    options = MATCHES_NOTHING.get(name) or ({"stages": (7,)} if "stages" in fields else None)
    if options is None:
        pytest.skip(f"no known option of '{name}' selects nothing")
    with pytest.raises(UserInputError) as err:
        apply_strategy(build(), build_strategy(name, options))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", STRATEGIES)
def test_unknown_option_lists_the_known_ones(name):
    with pytest.raises(UserInputError, match="its options are"):
        build_strategy(name, {"no_such_option": 1})


def test_injecting_twice_is_an_error():
    sam = build()
    apply_strategy(sam, build_strategy("lora"))
    with pytest.raises(UserInputError, match="already has"):
        apply_strategy(sam, build_strategy("lora"))


def test_lora_options_and_merge_match_the_hooked_model():
    sam, x = build(), images()
    lora = build_strategy("lora", {"rank": 2, "alpha": 4, "stages": (3,)})
    trainable = apply_strategy(sam, lora)
    assert trainable["image_encoder.trunk.blocks.4.attn.qkv.lora.A.weight"].shape == (2, 64)
    assert all(".blocks.4." in k or ".blocks.5." in k for k in trainable)
    perturb(trainable)
    hooked = encode(sam, x)
    merged = lora.merge(sam)
    assert (merged.strategy, merged.config) == ("qkv", {"stages": [3], "modules": ["attn.qkv", "attn.proj"]})
    assert set(merged.tensors) == {f"image_encoder.trunk.blocks.{i}.attn.{m}.{p}"
                           for i in (4, 5) for m in ("qkv", "proj") for p in ("weight", "bias")}
    assert not any("lora" in k for k, _ in sam.named_parameters())
    for a, b in zip(hooked, encode(sam, x)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_bad_values_are_errors():
    with pytest.raises(UserInputError, match="rank"):
        build_strategy("lora", {"rank": 0})
    with pytest.raises(UserInputError, match="bottleneck ratio"):
        build_strategy("mona", {"bottleneck": 9})
    with pytest.raises(UserInputError, match="regular expression"):
        build_strategy("full", {"include": "("})
    with pytest.raises(UserInputError, match="empty bottleneck"):
        apply_strategy(build(), build_strategy("adaptformer", {"bottleneck": 0.01}))


def test_full_include_narrows_the_parameters():
    sam = build()
    trainable = apply_strategy(sam, build_strategy("full", {"include": r"sam_mask_decoder\..*"}))
    assert trainable and all(k.startswith("sam_mask_decoder.") for k in trainable)


# Hiera-L with random weights: the README's figures (about 4 s per build).
HIERA_L_EXPECTED = {"adaptformer": 9_898_385}


@pytest.mark.slow
def test_hiera_large_trainable_counts(capsys):
    from sansa_cli.core.sam2_base import build_sam2, resolve_base

    counts = {}
    for name in STRATEGIES:
        sam = build_sam2(resolve_base("sam2.1_hiera_large"))
        counts[name] = sum(p.numel() for p in apply_strategy(sam, build_strategy(name)).values())
    with capsys.disabled():
        print({k: f"{v:,}" for k, v in counts.items()})
    assert counts["adaptformer"] == HIERA_L_EXPECTED["adaptformer"]
    assert counts["full"] == 224_446_642
    assert 45e6 < counts["qkv"] < 55e6
