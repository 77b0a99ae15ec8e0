"""The authors' released checkpoints: safe loading, ratio inference, conversion, default model."""

from __future__ import annotations

import os

import pytest
import torch

from sansa_cli.artifacts.adapter_file import attach_adapters, read_adapter_info
from sansa_cli.adapters.base import apply_strategy, build_strategy
from sansa_cli.errors import AdapterFileError, DownloadError, MissingFileError
from sansa_cli.artifacts.official import (
    HIERA_SIZES, RELEASE_OVERRIDES, block_dims, convert_official, fit_base, hiera_blocks,
    infer_base, infer_ratio, read_state,
)
from tests.adapters_fixtures import (
    TINY, TINY_DIMS, TINY_STAGE_BLOCKS, encode, images, official_state, serve, write_official,
)
from tests.conftest import build_tiny


HIERA_L_DIMS = block_dims(144, [2, 6, 36, 4])
HIERA_L_ENDS = [1, 7, 43, 47]
HIERA_L_ADAPTED = list(range(8, 48))
# (embed_dim, blocks per stage) of the SAM 2.0 Hiera sizes, as published with SAM2
HIERA_LAYOUTS = {
    "sam2_hiera_tiny": (96, [1, 2, 7, 2]),
    "sam2_hiera_small": (96, [1, 2, 11, 2]),
    "sam2_hiera_base_plus": (112, [2, 3, 16, 3]),
    "sam2_hiera_large": (144, [2, 6, 36, 4]),
}
HIERA_T_DIMS = block_dims(96, [1, 2, 7, 2])  # SAM 2.0 Hiera-T
HIERA_T_ADAPTED = list(range(3, 12))  # its stages 2 and 3


def release_shapes(dims, blocks, ratio=0.3):
    """{block: (width, dim_out)} of a release file, from meta tensors (no memory)."""
    with torch.device("meta"):
        return read_state(official_state(dims, blocks, ratio))[1]


def test_block_dims_follow_the_configs():
    assert hiera_blocks(TINY) == (TINY_DIMS, [0, 1, 3, 5])
    assert hiera_blocks("sam2_hiera_large") == (HIERA_L_DIMS, HIERA_L_ENDS)
    assert HIERA_L_DIMS[8] == (288, 576) and HIERA_L_DIMS[44] == (576, 1152)
    assert tuple(HIERA_LAYOUTS) == HIERA_SIZES
    for name, (embed_dim, stages) in HIERA_LAYOUTS.items():
        assert hiera_blocks(name)[0] == block_dims(embed_dim, stages)


@pytest.mark.parametrize("name,ratio", [("sam2_hiera_tiny", 0.3), ("sam2_hiera_small", 0.8),
                                        ("sam2_hiera_base_plus", 0.3), ("sam2_hiera_large", 0.8)])
def test_the_hiera_size_is_inferred_from_a_release_file(name, ratio):
    embed_dim, stages = HIERA_LAYOUTS[name]
    adapted = list(range(sum(stages[:2]), sum(stages)))  # stages 2 and 3, as the release
    shapes = release_shapes(block_dims(embed_dim, stages), adapted, ratio)
    assert infer_base(shapes) == (name, {"bottleneck": ratio, "stages": [2, 3], "scale": 0.1})


@pytest.mark.parametrize("case,fragments", [
    ("unknown size", ["closest is sam2_hiera_tiny", "block 3's down_proj.weight has shape "
                      "(76, 512), expected (width, 384)"]),
    ("one width off", ["closest is sam2_hiera_tiny", "no single bottleneck ratio"]),
    ("too many blocks", ["closest is sam2_hiera_large", "adapter on block 48, but the Hiera has "
                         "48 blocks"]),
])
def test_a_file_that_fits_no_size_names_the_closest(case, fragments):
    if case == "unknown size":
        shapes = release_shapes(block_dims(128, [1, 2, 7, 2]), HIERA_T_ADAPTED)
    elif case == "one width off":
        shapes = release_shapes(HIERA_T_DIMS, HIERA_T_ADAPTED)
        shapes[5] = (shapes[5][0] + 3, shapes[5][1])
    else:
        shapes = release_shapes(block_dims(144, [2, 6, 36, 5]), list(range(8, 49)))
    with pytest.raises(AdapterFileError, match="fits no SAM 2.0 Hiera size") as err:
        infer_base(shapes)
    assert all(fragment in str(err.value) for fragment in fragments), err.value
    assert "--sam2" in str(err.value) and "\n" not in str(err.value)


def test_adapters_on_a_shared_stage_are_ambiguous():
    shapes = release_shapes(HIERA_T_DIMS, [1, 2])  # stage 1: the same in Hiera-T and Hiera-S
    with pytest.raises(AdapterFileError) as err:
        infer_base(shapes)
    assert "fit sam2_hiera_tiny and sam2_hiera_small alike" in str(err.value)
    assert "--sam2 sam2_hiera_tiny" in str(err.value)
    assert fit_base(shapes, *hiera_blocks("sam2_hiera_small"))["stages"] == [1]


@pytest.mark.parametrize("ratio", [0.3, 0.8, 0.25, 0.125])
def test_ratio_inference_on_hiera_large_shapes(ratio):
    widths = {i: int(HIERA_L_DIMS[i][0] * ratio) for i in HIERA_L_ADAPTED}
    assert infer_ratio(widths, HIERA_L_DIMS) == ratio
    assert infer_ratio(widths, HIERA_L_DIMS, hint=0.5) == ratio  # a wrong hint is ignored


def test_read_and_fit_hiera_large_without_memory():
    with torch.device("meta"):  # shapes only: no Hiera-L sized tensors are allocated
        state = official_state(HIERA_L_DIMS, HIERA_L_ADAPTED, 0.8)
    tensors, shapes = read_state(state)
    config = fit_base(shapes, HIERA_L_DIMS, HIERA_L_ENDS)
    assert config == {"bottleneck": 0.8, "stages": [2, 3], "scale": 0.1}
    assert len(tensors) == 240
    assert "image_encoder.trunk.blocks.8.adapter.norm.weight" in tensors


def test_inconsistent_widths_are_an_error():
    widths = {i: int(HIERA_L_DIMS[i][0] * 0.3) for i in HIERA_L_ADAPTED}
    widths[20] += 7
    with pytest.raises(AdapterFileError, match="no single bottleneck ratio"):
        infer_ratio(widths, HIERA_L_DIMS)


@pytest.mark.parametrize("ratio,channel_factor", [(0.3, 0.3), (0.8, None)])
def test_conversion_round_trip_reproduces_the_release_model(tmp_path, ratio, channel_factor):
    state = official_state(TINY_DIMS, TINY_STAGE_BLOCKS, ratio)
    src = write_official(tmp_path / "adapter_coco_fold0.pth", state, channel_factor)
    out = convert_official(src, tmp_path / "coco.safetensors", base_model=TINY)

    info = read_adapter_info(out)
    assert info.strategy == "adaptformer" and info.base_model == TINY
    assert info.config == {"bottleneck": ratio, "stages": [2, 3], "scale": 0.1}
    assert info.base_overrides == RELEASE_OVERRIDES
    assert info.extra["image_resize"] == "antialias-bilinear"
    assert info.extra["epoch"] == "4"

    # build_tiny puts the file's base settings over the video-predictor ones, as load_model does
    expected_model = build_tiny(overrides=info.base_overrides)
    trainable = apply_strategy(expected_model, build_strategy("adaptformer", {"bottleneck": ratio}))
    with torch.no_grad():
        for key, value in state.items():
            ours = key.removeprefix("sam.").replace("adapter_layer_norm_before", "norm")
            trainable[ours].copy_(value)
    loaded = build_tiny(overrides=info.base_overrides)
    assert not loaded.pred_obj_scores
    attach_adapters(loaded, out, info, None)
    x = images()
    assert all(torch.equal(a, b) for a, b in zip(encode(expected_model, x), encode(loaded, x)))


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_arbitrary_pickles_are_refused_without_running_them(tmp_path):
    marker = tmp_path / "ran"
    state = official_state(TINY_DIMS, TINY_STAGE_BLOCKS, 0.3)
    src = write_official(tmp_path / "evil.pth", state, payload=Payload(str(marker)))
    with pytest.raises(AdapterFileError, match="cannot be read safely") as err:
        convert_official(src, tmp_path / "out.safetensors", base_model=TINY)
    assert not marker.exists() and "\n" not in str(err.value)


@pytest.mark.parametrize("damage,match", [
    ("foreign_key", "not an AdaptFormer tensor"),
    ("missing_tensor", "damaged or incomplete"),
    ("partial_stage", "not whole Hiera stages"),
    ("no_model", "not an official SANSA checkpoint"),
    ("truncated", "cannot be read safely"),
])
def test_bad_official_files(tmp_path, damage, match):
    blocks = [2, 3, 4] if damage == "partial_stage" else TINY_STAGE_BLOCKS
    state = official_state(TINY_DIMS, blocks, 0.3)
    if damage == "foreign_key":
        state["sam.sam_mask_decoder.iou_token.weight"] = torch.zeros(1, 8)
    if damage == "missing_tensor":
        del state["sam.image_encoder.trunk.blocks.3.adapter.up_proj.bias"]
    src = write_official(tmp_path / "x.pth", state)
    if damage == "no_model":
        torch.save({"state_dict": state}, src)
    if damage == "truncated":
        src.write_bytes(src.read_bytes()[:500])
    with pytest.raises(AdapterFileError, match=match) as err:
        convert_official(src, tmp_path / "out.safetensors", base_model=TINY)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out.safetensors").exists()


@pytest.fixture()
def checkpoints(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    monkeypatch.setenv("SANSA_CHECKPOINTS", str(folder))
    return folder


def test_default_model_is_downloaded_converted_and_cached(tmp_path, checkpoints, monkeypatch):
    from sansa_cli.artifacts.universal_adapter import ensure_default_adapters

    served = tmp_path / "release"
    served.mkdir()
    write_official(served / "sansa_universal.pth",
                   official_state(TINY_DIMS, TINY_STAGE_BLOCKS, 0.8), channel_factor=0.8)
    url, server = serve(served)
    monkeypatch.setenv("SANSA_UNIVERSAL_URL", f"{url}/sansa_universal.pth")
    try:
        path = ensure_default_adapters(base_model=TINY)
    finally:
        server.shutdown()
        server.server_close()
    assert path == checkpoints / "sansa_universal.safetensors"
    assert read_adapter_info(path).config["bottleneck"] == 0.8
    assert sorted(p.name for p in checkpoints.iterdir()) == ["sansa_universal.safetensors"]
    assert ensure_default_adapters(base_model=TINY) == path  # cached: the server is gone


def test_default_model_offline_says_what_to_place_where(checkpoints, monkeypatch):
    from sansa_cli.artifacts.universal_adapter import UNIVERSAL_URL, ensure_default_adapters

    with pytest.raises(MissingFileError) as err:
        ensure_default_adapters(download=False)
    message = str(err.value)
    assert UNIVERSAL_URL in message and str(checkpoints / "sansa_universal.pth") in message
    assert str(checkpoints / "sam2_hiera_large.pt") in message
    monkeypatch.setenv("SANSA_UNIVERSAL_URL", "http://127.0.0.1:9/sansa_universal.pth")
    with pytest.raises(DownloadError) as err:
        ensure_default_adapters(base_model=TINY)
    assert "127.0.0.1:9" in str(err.value) and "\n" not in str(err.value)
    assert not list(checkpoints.glob("*")) if checkpoints.exists() else True  # no partial file


def test_default_model_placed_by_hand_is_converted_and_kept(checkpoints):
    from sansa_cli.artifacts.universal_adapter import ensure_default_adapters

    checkpoints.mkdir()
    placed = write_official(checkpoints / "sansa_universal.pth",
                            official_state(TINY_DIMS, TINY_STAGE_BLOCKS, 0.8), channel_factor=0.8)
    path = ensure_default_adapters(download=False, base_model=TINY)
    assert path.is_file() and placed.is_file()
