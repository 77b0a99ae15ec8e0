"""Building stock SAM2 models and loading their checkpoints."""

from __future__ import annotations

import pytest
import torch

from sansa_cli.core.sam2_base import build_sam2, count_parameters, resolve_base
from tests.conftest import TINY_YAML, build_tiny


def test_stock_tiny_total():
    assert count_parameters(build_sam2(resolve_base("sam2.1_hiera_tiny"))) == 38_962_498


def test_checkpoint_loads_into_a_model_without_the_object_score_head(tmp_path):
    """The release's base drops SAM2's object-score head; a stock checkpoint still loads, and
    only the head's weights are left out."""
    from sansa_cli.core.sam2_base import RELEASE_SETTINGS, load_checkpoint
    from sansa_cli.errors import CheckpointError

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
