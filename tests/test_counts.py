"""Parameter counts of the stock models and of the paper's AdaptFormer configuration."""

from __future__ import annotations

import pytest
import torch

from sansa_cli.adapters.adaptformer import AdaptFormer
from sansa_cli.adapters.base import apply_strategy
from sansa_cli.core.sam2_base import build_sam2, count_parameters, resolve_base

RELEASE_BASE = {"model.pred_obj_scores": False, "model.pred_obj_scores_mlp": False,
                "model.fixed_no_obj_ptr": False}


def test_hiera_l_adaptformer_counts():
    sam = build_sam2(resolve_base("sam2.1_hiera_large"))
    assert count_parameters(sam) == 224_446_642
    trainable = apply_strategy(sam, AdaptFormer(AdaptFormer.Config(bottleneck=0.3)))
    assert sum(p.numel() for p in trainable.values()) == 9_898_385
    assert sum(p.numel() for p in sam.parameters() if p.requires_grad) == 9_898_385
    # 36 + 4 blocks of stages 2 and 3, the first of each with a narrower bottleneck
    widths = [p.shape[0] for k, p in trainable.items() if k.endswith("down_proj.weight")]
    assert len(widths) == 40 and widths[0] == int(288 * 0.3) and widths[-1] == int(1152 * 0.3)


def test_release_base_total():
    """SAM 2.0 Hiera-L without the object-score head plus adapters: the paper's 234M."""
    sam = build_sam2(resolve_base("sam2_hiera_large", RELEASE_BASE))
    apply_strategy(sam, AdaptFormer())
    assert count_parameters(sam) == 234_196_162


def test_stock_tiny_total():
    assert count_parameters(build_sam2(resolve_base("sam2.1_hiera_tiny"))) == 38_962_498


def test_fresh_adaptformer_is_an_exact_no_op():
    from tests.conftest import build_tiny

    sam = build_tiny()
    images = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        before = sam.forward_image(images)["backbone_fpn"]
        apply_strategy(sam, AdaptFormer())
        after = sam.forward_image(images)["backbone_fpn"]
    for a, b in zip(before, after):
        assert torch.equal(a, b)


def test_unknown_stage_is_an_error():
    from sansa_cli.errors import UserInputError
    from tests.conftest import build_tiny

    with pytest.raises(UserInputError, match="stages"):
        apply_strategy(build_tiny(), AdaptFormer(AdaptFormer.Config(stages=(4,))))


def test_checkpoint_loads_into_a_model_without_the_object_score_head(tmp_path):
    """The release's base drops SAM2's object-score head; a stock checkpoint still loads, and
    only the head's weights are left out."""
    from sansa_cli.core.sam2_base import RELEASE_SETTINGS, load_checkpoint
    from sansa_cli.errors import CheckpointError
    from tests.conftest import TINY_YAML, build_tiny

    stock = build_tiny()
    path = tmp_path / "stock.pt"
    torch.save({"model": stock.state_dict()}, path)
    headless = build_sam2(resolve_base(str(TINY_YAML), RELEASE_SETTINGS))
    load_checkpoint(headless, path)
    assert torch.equal(headless.maskmem_tpos_enc, stock.maskmem_tpos_enc)
    state = dict(stock.state_dict(), extra_weight=torch.zeros(1))
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError, match="extra_weight"):
        load_checkpoint(headless, path)
