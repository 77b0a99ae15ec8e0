"""``sansa predict --precision bf16|fp16``: autocast on the CPU, close to fp32."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.cli_helpers import run_sansa
from tests.conftest import TINY_YAML


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """Non-zero AdaptFormer adapters, so the adapter modules run under autocast too."""
    from tests.eval_fixtures import adapter_file

    return adapter_file(tmp_path_factory.mktemp("precision") / "adaptformer.safetensors")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_masks_are_written_and_close_to_fp32(
        precision, scene, adapters, tiny_checkpoint, tiny_model_args, capsys, monkeypatch):
    from sansa_cli import load_model

    ref, mask = scene["refs"][0]
    targets = scene["targets"][:2]
    out = scene["dir"] / precision
    code, _, err = run_sansa(["predict", ref, mask, *targets, "--out", out, "--json",
                              "--adapters", adapters, *tiny_model_args, "--precision",
                              precision], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads((out / "predictions.json").read_text())["precision"] == precision

    results = {p: load_model(sam2=str(TINY_YAML), sam2_checkpoint=tiny_checkpoint,
                             adapters=adapters, device="cpu", precision=p
                             ).predict([(ref, mask)], targets)
               for p in ("fp32", precision)}
    for target, low, full in zip(targets, results[precision], results["fp32"]):
        written = np.asarray(Image.open(out / f"{target.stem}.png"))
        with Image.open(target) as img:
            assert written.shape == (img.height, img.width) == low.mask.shape
        assert set(np.unique(written)) <= {0, 255}
        np.testing.assert_array_equal(written > 0, low.mask)  # the CLI writes the API's mask
        assert low.low_res_logits.shape == full.low_res_logits.shape
        # autocast really ran at the lower precision, and stayed close to fp32
        assert not np.array_equal(low.low_res_logits, full.low_res_logits)
        scale = float(np.abs(full.low_res_logits).max())
        assert float(np.abs(low.low_res_logits - full.low_res_logits).max()) < 0.05 * scale
        assert (low.mask == full.mask).mean() > 0.98
        assert low.predicted_iou == pytest.approx(full.predicted_iou, abs=0.01)
        assert low.object_score == pytest.approx(full.object_score, abs=0.01)


def test_unknown_precision_is_an_error():
    from sansa_cli import load_model
    from sansa_cli.errors import UserInputError

    with pytest.raises(UserInputError, match="unknown precision 'fp8'"):
        load_model(sam2=str(TINY_YAML), precision="fp8", device="cpu", download=False)


AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
NATIVE = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile amx_bf16\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_native_bf16_is_read_from_the_cpu_flags():
    from sansa_cli.core.device import cpu_has_native_bf16

    assert not cpu_has_native_bf16(AVX2_ONLY)
    assert cpu_has_native_bf16(NATIVE) and cpu_has_native_bf16(ARM)
    assert not cpu_has_native_bf16("")


@pytest.mark.parametrize("native, expected", [(False, "fp32"), (True, "bf16")])
def test_auto_precision_on_a_cpu_follows_native_bf16(native, expected, monkeypatch):
    import torch

    from sansa_cli.core import device

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: native)
    warnings = []
    assert device.resolve_precision("auto", torch.device("cpu"), warnings.append) == expected
    assert device.resolve_precision("fp32", torch.device("cpu"), warnings.append) == "fp32"
    assert warnings == []
    assert device.resolve_precision("bf16", torch.device("cpu"), warnings.append) == "bf16"
    assert len(warnings) == (0 if native else 1)


def test_forced_bf16_on_an_emulating_cpu_warns_with_its_cost(scene, tiny_model_args, capsys,
                                                              monkeypatch):
    from sansa_cli.core import device

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    ref, mask = scene["refs"][0]
    code, _, err = run_sansa(["predict", ref, mask, scene["targets"][0], "--adapters", "none",
                              *tiny_model_args, "--precision", "bf16"], capsys, monkeypatch)
    assert code == 0, err
    assert "without native bf16" in err and "7x slower" in err
    code, _, err = run_sansa(["predict", ref, mask, scene["targets"][0], "--adapters", "none",
                              *tiny_model_args, "--precision", "auto"], capsys, monkeypatch)
    assert code == 0 and "native bf16" not in err
