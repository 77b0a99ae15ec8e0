"""The export side of ONNX, in torch: the real-valued RoPE equals sam2's complex one to the bit,
the graph modules compute exactly what sansa's pseudo-video computes, and ``sansa export-onnx``
refuses bad requests before building anything. (The exported graphs themselves are checked
against torch in test_onnx_runtime.py, which exports once.)"""

from __future__ import annotations

import pytest
import torch
from sam2.modeling.sam.transformer import RoPEAttention

from sansa_cli.core import pseudo_video as pv
from sansa_cli.onnx import graphs
from sansa_cli.onnx.rope import RealRoPEAttention, real_rope
from tests.cli_helpers import assert_one_line_error, run_sansa
from tests.conftest import build_tiny
from tests.onnx_fixtures import TINY


@torch.no_grad()
@pytest.mark.parametrize("query_block", [None, 256])
def test_real_valued_rope_equals_sams_complex_rope_to_the_bit(query_block):
    # Hiera-T's memory attention at 1024 px: a 64x64 grid, 256 channels, keys of two memory
    # frames (64-dim) followed by 8 object-pointer tokens that are not rotated.
    torch.manual_seed(0)
    cross = RoPEAttention(256, 1, rope_k_repeat=True, feat_sizes=(64, 64), kv_in_dim=64).eval()
    self_attention = RoPEAttention(256, 1, feat_sizes=(64, 64)).eval()
    q = torch.randn(1, 4096, 256)
    k = torch.randn(1, 2 * 4096 + 8, 64)
    expected = (cross(q, k, k, num_k_exclude_rope=8), self_attention(q, q, q))
    with real_rope(cross, query_block) as swapped_cross, \
            real_rope(self_attention, query_block) as swapped_self:
        assert (swapped_cross, swapped_self) == (1, 1)
        assert type(cross) is RealRoPEAttention
        found = (cross(q, k, k, num_k_exclude_rope=8), self_attention(q, q, q))
    assert type(cross) is RoPEAttention and type(self_attention) is RoPEAttention
    assert all(torch.equal(a, b) for a, b in zip(expected, found))


@torch.no_grad()
def test_the_swap_touches_every_rope_module_of_sam2_and_nothing_else():
    sam = build_tiny()
    state = {k: v.clone() for k, v in sam.state_dict().items()}
    ropes = [m for m in sam.modules() if isinstance(m, RoPEAttention)]
    with real_rope(sam) as swapped:
        assert swapped == len(ropes) == 2  # one layer: self- and cross-attention
        assert all(type(m) is RealRoPEAttention for m in ropes)
    assert all(type(m) is RoPEAttention and not hasattr(m, "query_block") for m in ropes)
    assert all(torch.equal(v, sam.state_dict()[k]) for k, v in state.items())


def _memories(sam, frames, count: int):
    size = sam.image_size
    gen = torch.Generator().manual_seed(5)
    out = []
    for i in range(count):
        mask = (torch.rand(1, 1, size, size, generator=gen) > 0.6).float()
        out.append(pv.reference_memory(sam, frames.select([i % frames.batch]), mask=mask)[0])
    return out


@torch.no_grad()
@pytest.mark.parametrize("shots", [1, 3])
def test_memory_attention_over_shapes_is_condition_on_memory(shots):
    sam = build_tiny()
    frames = pv.encode_frames(sam, torch.randn(2, 3, 256, 256))
    memories = _memories(sam, frames, shots)
    positions, memory_position = graphs.constant_positions(sam, 256)
    condition = graphs.Condition(sam, positions[-1], memory_position)
    features = graphs.image_like(frames)[-1]
    stacked = (torch.cat([m.features for m in memories]), torch.cat([m.obj_ptr for m in memories]))
    expected = pv.condition_on_memory(sam, frames, memories)
    assert torch.equal(condition(features, *stacked), expected)
    with real_rope(sam):
        assert torch.equal(condition(features, *stacked), expected)


@torch.no_grad()
def test_graph_modules_compute_what_the_pseudo_video_computes():
    from sansa_cli.core.prompts import Box, point_inputs

    sam = build_tiny()
    images = torch.randn(2, 3, 256, 256)
    frames = pv.encode_frames(sam, images)
    levels = graphs.Encoder(sam)(images)
    assert [tuple(x.shape) for x in levels] == [(2, 8, 64, 64), (2, 16, 32, 32), (2, 64, 16, 16)]
    assert all(torch.equal(a, b) for a, b in zip(levels, graphs.image_like(frames)))
    positions, _ = graphs.constant_positions(sam, 256)  # the same for every image
    encoded_positions = graphs.image_like(pv.FrameFeatures(frames.vision_pos, [],
                                                            frames.feat_sizes))
    assert all(torch.equal(p.expand(2, -1, -1, -1), q)
               for p, q in zip(positions, encoded_positions))
    mask = (torch.rand(2, 1, 256, 256) > 0.5).float()
    memory, _ = pv.reference_memory(sam, frames, mask=mask)
    found = graphs.MaskReference(sam, positions)(*levels, mask)
    assert torch.equal(found[0], memory.features) and torch.equal(found[1], memory.obj_ptr)
    points = point_inputs(Box(10, 20, 50, 60), 80, 96, 256)
    one = frames.select([0])
    memory, drawn = pv.reference_memory(sam, one, points=points)
    found = graphs.PromptReference(sam, positions)(*(x[:1] for x in levels), *points.values())
    assert all(torch.equal(a, b) for a, b in zip(found, (memory.features, memory.obj_ptr, drawn)))
    conditioned = torch.randn(2, 64, 16, 16)
    expected = pv.decode_target(sam, frames, conditioned)
    found = graphs.Decoder(sam)(conditioned, *levels[:-1])
    assert all(torch.equal(a, b) for a, b in zip(
        found, (expected.low_res_logits, expected.iou, expected.object_score_logits)))


def test_export_refuses_a_folder_that_is_not_empty(tmp_path, capsys, monkeypatch):
    out = tmp_path / "onnx"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = run_sansa(["export-onnx", "--adapters", "none", "--sam2", TINY,
                              "--out", out], capsys, monkeypatch)
    assert_one_line_error(code, err, str(out), "not empty")


def test_export_refuses_an_opset_it_cannot_write(tmp_path, capsys, monkeypatch):
    code, _, err = run_sansa(["export-onnx", "--adapters", "none", "--sam2", TINY,
                              "--opset", "12", "--out", tmp_path / "onnx"], capsys, monkeypatch)
    assert_one_line_error(code, err, "opset 12", "17 to 23")
    assert not (tmp_path / "onnx").exists()


def test_export_refuses_a_missing_adapter_file(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "nowhere.safetensors"
    code, _, err = run_sansa(["export-onnx", "--adapters", missing, "--sam2", TINY,
                              "--out", tmp_path / "onnx"], capsys, monkeypatch)
    assert_one_line_error(code, err, str(missing))
