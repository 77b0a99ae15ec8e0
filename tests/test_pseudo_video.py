"""The pseudo-video core against SAM2's own video predictor, and its invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sansa_cli.adapters.adaptformer import AdaptFormer
from sansa_cli.adapters.base import apply_strategy
from sansa_cli.core.images import load_image, load_mask, preprocess
from sansa_cli.core.segmenter import SansaModel
from tests.conftest import build_tiny


def _video_predictor_masks(sam, frames: torch.Tensor, mask: np.ndarray, size):
    """Mask on frame 0, propagate to frame 1 with sam2's SAM2VideoPredictor (same weights)."""
    from hydra.utils import instantiate
    from sansa_cli.core.sam2_base import VIDEO_PREDICTOR_SETTINGS, compose_config, resolve_base
    from tests.conftest import TINY_YAML

    overrides = {**VIDEO_PREDICTOR_SETTINGS,
                 "model._target_": "sam2.sam2_video_predictor.SAM2VideoPredictor",
                 "model.fill_hole_area": 0}
    cfg = compose_config(resolve_base(str(TINY_YAML), overrides))
    predictor = instantiate(cfg.model, _recursive_=True).eval()
    weights = sam.state_dict()  # adapters, if any, are fresh no-ops the predictor lacks
    predictor.load_state_dict({k: weights[k] for k in predictor.state_dict()})
    state = _init_state(predictor, frames, size)
    predictor.add_new_mask(state, frame_idx=0, obj_id=1, mask=mask)
    out = {i: m for i, _, m in predictor.propagate_in_video(state)}
    return out[1][0, 0]


def _upsampled(result) -> np.ndarray:
    logits = torch.from_numpy(result.low_res_logits)[None, None]
    full = torch.nn.functional.interpolate(logits, size=result.mask.shape, mode="bilinear",
                                           align_corners=False)
    return full[0, 0].numpy()


def _init_state(predictor, frames, size):
    """An inference state over already-preprocessed frames (what init_state builds from files)."""
    import tempfile
    from pathlib import Path
    from PIL import Image

    with tempfile.TemporaryDirectory() as d:
        for i in range(frames.size(0)):
            Image.new("RGB", (8, 8)).save(Path(d) / f"{i:05d}.jpg")
        state = predictor.init_state(d)
    state["images"] = frames
    state["video_width"], state["video_height"] = size
    state["cached_features"] = {}
    return state


@pytest.mark.parametrize("with_adapters", [False, True])
def test_one_shot_equals_sam2_video_predictor(scene, with_adapters):
    sam = build_tiny()
    if with_adapters:
        apply_strategy(sam, AdaptFormer())
    (ref_img, ref_mask), target = scene["refs"][0], scene["targets"][0]
    model = SansaModel(sam, "cpu")
    ours = model.predict([(ref_img, ref_mask)], [target])[0]

    img_t, img_r = load_image(target), load_image(ref_img)
    frames = torch.stack([preprocess(img_r, 256), preprocess(img_t, 256)])
    theirs = _video_predictor_masks(sam, frames, load_mask(ref_mask), img_t.size)
    assert 0.01 < ours.mask.mean() < 0.99  # an informative mask, not an empty one
    np.testing.assert_array_equal(ours.mask, (theirs > 0).numpy())
    np.testing.assert_allclose(_upsampled(ours), theirs.numpy(), atol=1e-4)


def test_reference_order_does_not_matter(scene):
    model = SansaModel(build_tiny(), "cpu")
    refs = scene["refs"]
    base = model.predict(refs, scene["targets"])
    for order in ([2, 0, 1], [1, 2, 0]):
        permuted = model.predict([refs[i] for i in order], scene["targets"])
        for a, b in zip(base, permuted):
            np.testing.assert_allclose(a.low_res_logits, b.low_res_logits, atol=1e-5)
            assert a.predicted_iou == pytest.approx(b.predicted_iou, abs=1e-5)


def test_cached_references_equal_recomputing_per_target(scene):
    model = SansaModel(build_tiny(), "cpu")
    cached = model.predict(scene["refs"], scene["targets"], batch_size=1)
    for target, result in zip(scene["targets"], cached):
        fresh = model.predict(scene["refs"], [target], batch_size=1)[0]
        np.testing.assert_array_equal(result.low_res_logits, fresh.low_res_logits)
        np.testing.assert_array_equal(result.mask, fresh.mask)


def test_batched_targets_equal_one_by_one(scene):
    model = SansaModel(build_tiny(), "cpu")
    memory = model.encode_references(scene["refs"])
    batched = list(model.segment(memory, scene["targets"], batch_size=4))
    single = list(model.segment(memory, scene["targets"], batch_size=1))
    for a, b in zip(batched, single):
        np.testing.assert_allclose(a.low_res_logits, b.low_res_logits, atol=1e-5)
        assert a.mask.shape == b.mask.shape
        assert (a.mask != b.mask).mean() < 1e-3


@pytest.mark.parametrize("prompt_kind", ["points", "box", "scribble"])
def test_prompted_references_never_run_memory_attention(scene, prompt_kind):
    from sansa_cli.core.prompts import Box, Points, Scribble

    sam = build_tiny()
    calls = []
    sam.memory_attention.register_forward_hook(lambda *_: calls.append(1))
    strokes = np.zeros((80, 96), bool)
    strokes[35:45, 30:45] = True
    prompt = {"points": Points(((38.0, 40.0),), ((3.0, 3.0),)), "box": Box(20, 20, 60, 60),
              "scribble": Scribble(strokes)}[prompt_kind]
    model = SansaModel(sam, "cpu")
    memory = model.encode_references([(scene["refs"][0][0], prompt)])
    assert calls == []  # the reference frame is decoded without memory attention
    assert memory.masks[0].shape == (80, 96) and memory.masks[0].dtype == bool
    result = list(model.segment(memory, scene["targets"][:1]))[0]
    assert calls == [1]  # the target does attend to the reference's memory
    assert result.mask.shape == (80, 96)


def test_prompt_api_matches_cli_parsing():
    from sansa_cli.core.prompts import Box, Points, Scribble, parse_marking

    assert parse_marking("box:1,2,30,40") == Box(1, 2, 30, 40)
    assert parse_marking("points:1,2;3,4|neg:5,6") == Points(((1, 2), (3, 4)), ((5, 6),))
    assert isinstance(parse_marking("scribble:s.png"), Scribble)
