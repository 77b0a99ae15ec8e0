"""The torch-free runtime: numpy preparation equals torch's, manifests are checked, and an
exported tiny SAM2 (with AdaptFormer) run by onnxruntime reproduces sansa's torch predictions.

The dynamo export of the five graphs costs most of this file's time, so the default suite
exports once, in one test that checks the manifest, each graph against torch, the chained
pipeline for a mask reference (K = 1) and box references (K = 3), and ``predict --onnx``'s job
in a Python where torch cannot be imported. The whole matrix (frozen, AdaptFormer, LoRA, Mona;
mask, clicks, box, scribble; K = 1 and 3) is ``slow``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sansa_cli.onnx import arrays
from tests.cli_helpers import run_sansa
from tests.onnx_fixtures import (
    TINY,
    adapter_file,
    agreement,
    checkpoint,
    export_tiny,
    references,
    run_without_torch,
    scene,
)

SIZES = [(80, 96), (90, 120), (300, 170), (600, 800), (33, 1000)]


def test_numpy_resizes_are_torchs():
    rng = np.random.default_rng(0)
    for h, w in SIZES:
        image = rng.random((3, h, w), dtype=np.float32)
        expected = F.interpolate(torch.from_numpy(image)[None], (256, 256), mode="bilinear",
                                 align_corners=False, antialias=True)[0].numpy()
        np.testing.assert_allclose(arrays.resize_antialias(image, 256, 256), expected,
                                   rtol=0, atol=2.4e-7)
        logits = rng.standard_normal((1, 1, 64, 64)).astype(np.float32) * 8
        expected = F.interpolate(torch.from_numpy(logits), (h, w), mode="bilinear",
                                 align_corners=False).numpy()
        scale = float(np.abs(logits).max())  # float noise is relative to the logits' range
        np.testing.assert_allclose(arrays.resize_bilinear(logits, h, w), expected,
                                   rtol=0, atol=2e-7 * scale)


def test_reference_masks_are_prepared_as_torch_prepares_them():
    from sansa_cli.core.images import mask_to_input

    rng = np.random.default_rng(1)
    for h, w in SIZES:
        mask = np.zeros((h, w), bool)
        mask[h // 5: h // 2, w // 4: w - 3] = True
        mask |= rng.random((h, w)) > 0.97  # speckles: many antialiased edges
        for rule in ("half", "any"):
            expected = mask_to_input(mask, 256, rule).numpy()
            found = arrays.mask_to_input(mask, 256, rule)
            assert found.shape == (1, 256, 256) and found.dtype == np.float32
            # equal, but for pixels within float noise of the threshold (none on CPUs with
            # fused multiply-add, where the taps are summed exactly as torch sums them)
            soft = F.interpolate(torch.from_numpy(mask.astype(np.float32))[None, None],
                                 (256, 256), mode="bilinear", antialias=True)[0].numpy()
            tie = np.abs(soft - (0.5 if rule == "half" else 0.0)) < 2.4e-7
            assert np.array_equal(found[~tie], expected[~tie]), (h, w, rule)


def test_images_are_prepared_as_torch_prepares_them():
    from sansa_cli.core.images import preprocess

    picture = Image.fromarray(np.random.default_rng(2).integers(0, 255, (90, 120, 3), np.uint8))
    for resize, atol in (("pil-bicubic", 0.0), ("antialias-bilinear", 2e-6)):
        expected = preprocess(picture, 256, resize).numpy()
        np.testing.assert_allclose(arrays.preprocess(picture, 256, resize), expected,
                                   rtol=0, atol=atol)


def test_memory_is_rounded_to_bf16_as_torch_rounds_it():
    values = np.random.default_rng(3).standard_normal(100_000).astype(np.float32) * 30
    values[:4] = (0.0, -0.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8)  # ties go to even
    expected = torch.from_numpy(values).to(torch.bfloat16).float().numpy()
    assert np.array_equal(arrays.round_bf16(values), expected)


def test_the_runtime_refuses_folders_that_are_not_exports(tmp_path):
    from sansa_cli.errors import MissingFileError, UserInputError
    from sansa_cli.onnx.manifest import MANIFEST_NAME, read_manifest

    with pytest.raises(MissingFileError, match="does not exist"):
        read_manifest(tmp_path / "nowhere")
    with pytest.raises(MissingFileError, match=f"no {MANIFEST_NAME}"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"format": "sansa-onnx",
                                                      "format_version": "9"}))
    with pytest.raises(UserInputError, match="format version '9'"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(UserInputError, match="not readable JSON"):
        read_manifest(tmp_path)


def _check_manifest(out: Path, adapter: Path) -> dict:
    from sansa_cli.artifacts.hashing import sha256_file
    from sansa_cli.onnx.manifest import read_manifest

    values = read_manifest(out).values
    assert values["adapters"] == {"file": str(adapter.resolve()), "sha256": sha256_file(adapter),
                                  "strategy": "adaptformer", "merged": False}
    assert (values["image_size"], values["opset"], values["dtype"]) == (256, 18, "float32")
    assert values["input_profile"] == {"resize": "pil-bicubic", "mask_rule": "half",
                                       "memory_dtype": "bf16", "pre_resize": False}
    assert "rounded to bf16" in values["memory_precision"]
    assert values["levels"] == ["high_res_0", "high_res_1", "features"]
    assert values["versions"]["torch"] == torch.__version__
    graphs = values["graphs"]
    dynamic = {name: [item["shape"][0] for item in graphs[name]["inputs"]] for name in graphs}
    assert all(isinstance(d, str) for d in dynamic["encoder"] + dynamic["condition"]
               + dynamic["decoder"] + dynamic["mask_reference"]), dynamic
    points = graphs["prompt_reference"]["inputs"][-1]
    assert points["name"] == "point_labels" and isinstance(points["shape"][1], str)
    return values


@torch.no_grad()
def _check_graphs(out: Path, sam) -> None:
    """Each graph in onnxruntime against the same module in torch, on the same inputs."""
    import onnxruntime as ort

    from sansa_cli.onnx import graphs as g
    from sansa_cli.onnx.export import graph_specs

    def run(name, *inputs):
        session = ort.InferenceSession(str(out / f"{name}.onnx"))
        names = [i.name for i in session.get_inputs()]
        return session.run(None, {n: x.numpy() for n, x in zip(names, inputs)})

    specs = {spec.name: spec for spec in graph_specs(sam)}
    images = torch.randn(3, 3, 256, 256)  # a batch size the export did not see
    levels = g.Encoder(sam)(images)
    # Rectangles with edges on the 4-pixel grid: no low-resolution logit of the mask is 0
    # exactly, where float noise would decide the memory encoder's binarisation.
    masks = torch.zeros(3, 1, 256, 256)
    for i, (y0, y1, x0, x1) in enumerate([(40, 200, 60, 180), (0, 96, 128, 256), (8, 248, 8, 24)]):
        masks[i, :, y0:y1, x0:x1] = 1
    memory = torch.randn(3, 32, 16, 16)
    cases = {"encoder": (images,),
             "mask_reference": (*levels, masks),
             "prompt_reference": (*(x[:1] for x in levels), torch.tensor([[[40.0, 50.0]]]),
                                  torch.tensor([[1]], dtype=torch.int32)),
             "condition": (levels[-1], memory, torch.randn(3, 64)),
             "decoder": (levels[-1], *levels[:-1])}
    for name, inputs in cases.items():
        expected = specs[name].module(*inputs)
        expected = expected if isinstance(expected, tuple) else (expected,)
        for found, wanted in zip(run(name, *inputs), expected, strict=True):
            np.testing.assert_allclose(found, wanted.numpy(), rtol=1e-4, atol=2e-5,
                                       err_msg=name)


def test_onnx_pipeline_reproduces_sansa_predict(tmp_path, capsys, monkeypatch):
    from sansa_cli import load_model

    adapter = adapter_file(tmp_path / "adapter.safetensors")
    ckpt = checkpoint(tmp_path)
    out = tmp_path / "onnx"
    code, stdout, err = run_sansa(["export-onnx", "--adapters", adapter, "--sam2", TINY,
                                   "--sam2-checkpoint", ckpt, "--out", out], capsys, monkeypatch)
    assert code == 0, err
    assert "encoder.onnx" in stdout and "sansa-onnx.json" in stdout
    _check_manifest(out, adapter)
    model = load_model(sam2=TINY, sam2_checkpoint=ckpt, adapters=adapter, device="cpu")
    _check_graphs(out, model.sam)
    where = _check_chains(out, model, tmp_path)
    _check_cli(out, where, adapter, tmp_path, capsys, monkeypatch)


def _check_cli(out: Path, where: dict, adapter: Path, tmp_path: Path, capsys,
               monkeypatch) -> None:
    """``sansa predict --onnx`` writes the masks of the torch job (with its own checks)."""
    image, mask = where["refs"][0]
    folder = where["targets"][0].parent
    torch_out, onnx_out = tmp_path / "torch-masks", tmp_path / "onnx-masks"
    code, _, err = run_sansa(["predict", image, mask, folder, "--out", torch_out, "--adapters",
                              adapter, "--sam2", TINY, "--sam2-checkpoint", checkpoint(tmp_path),
                              "--device", "cpu", "--precision", "fp32"], capsys, monkeypatch)
    assert code == 0, err
    code, _, err = run_sansa(["predict", image, mask, folder, "--out", onnx_out, "--onnx", out,
                              "--json"], capsys, monkeypatch)
    assert code == 0, err
    for target in where["targets"]:
        a = np.asarray(Image.open(torch_out / f"{target.stem}.png"))
        b = np.asarray(Image.open(onnx_out / f"{target.stem}.png"))
        assert np.mean(a == b) >= 0.9999
    summary = json.loads((onnx_out / "predictions.json").read_text())
    assert summary["device"].startswith("onnxruntime") and summary["onnx"] == str(out.resolve())
    code, _, err = run_sansa(["predict", image, mask, folder, "--onnx", out, "--adapters",
                              adapter], capsys, monkeypatch)
    assert code == 1 and err.count("\n") == 1 and "drop --adapters" in err


def _check_chains(out: Path, model, tmp_path: Path) -> None:
    """The whole pipeline in onnxruntime against ``model.predict``, then the job."""
    from sansa_cli.onnx_runtime import OnnxSansa

    where = scene(tmp_path)
    runtime = OnnxSansa(out, batch_size=2)
    for case in ("mask-k1", "box-k3"):
        refs = references(case, where)
        expected = model.predict(refs, where["targets"])
        found = runtime.predict(refs, where["targets"])
        share, flipped, iou = agreement(expected, found)
        assert share >= 0.9999 and iou <= 1e-5, (case, flipped, iou)
        for a, b in zip(expected, found):
            np.testing.assert_allclose(b.low_res_logits, a.low_res_logits, rtol=0, atol=1e-4)
            assert b.object_score == pytest.approx(a.object_score, abs=1e-5)
    _check_torch_free_job(out, where, model, tmp_path)
    return where


def _check_torch_free_job(out: Path, where: dict, model, tmp_path: Path) -> None:
    """``predict --onnx``'s job, run where torch cannot be imported, writes the masks torch
    predicts and predictions.json rows."""
    image, mask = where["refs"][0]
    folder = where["targets"][0].parent
    code = (f"from pathlib import Path\nfrom sansa_cli.predict.onnx_job import run_onnx_predict\n"
            f"result = run_onnx_predict(Path({str(out)!r}), [(Path({str(image)!r}), "
            f"Path({str(mask)!r}))], [Path({str(folder)!r})], out=Path('masks'), json=True,\n"
            "    overlay=True, html=True, workers=2)\n")
    run_without_torch(code, tmp_path)
    summary = json.loads((tmp_path / "masks" / "predictions.json").read_text())
    assert (tmp_path / "masks" / "index.html").is_file()
    expected = model.predict([(image, mask)], where["targets"])
    for row, torch_result in zip(summary["targets"], expected):
        found = np.asarray(Image.open(tmp_path / "masks" / row["mask"])) > 0
        assert np.mean(found == torch_result.mask) >= 0.9999, row
        assert row["predicted_iou"] == pytest.approx(torch_result.predicted_iou, abs=1e-4)
    assert summary["adapters"] == "adaptformer" and summary["sam2"] == "tiny_sam2"


@pytest.fixture(scope="session")
def exports(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("onnx-exports")
    files = {"none": "none"}
    for name in ("adaptformer", "lora", "mona"):
        files[name] = str(adapter_file(root / f"{name}.safetensors", name))
    return {"root": root, "files": files}


@pytest.mark.slow
@pytest.mark.parametrize("adapters", ["none", "adaptformer", "lora", "mona"])
@pytest.mark.parametrize("case", [f"{kind}-k{k}" for kind in ("mask", "points", "box",
                                                                "scribble") for k in (1, 3)])
def test_parity_matrix(exports, adapters, case, tmp_path):
    from sansa_cli import load_model
    from sansa_cli.onnx_runtime import OnnxSansa

    folder = exports["root"] / adapters
    out = export_tiny(folder, exports["files"][adapters])
    model = load_model(sam2=TINY, sam2_checkpoint=checkpoint(folder),
                       adapters=exports["files"][adapters], device="cpu")
    where = scene(tmp_path)
    refs = references(case, where)
    expected = model.predict(refs, where["targets"])
    found = OnnxSansa(out, batch_size=3).predict(refs, where["targets"])
    share, flipped, iou = agreement(expected, found)
    assert share >= 0.9999 and iou <= 1e-5, (flipped, iou)
    if adapters == "lora":
        assert json.loads((out / "sansa-onnx.json").read_text())["adapters"]["merged"]
