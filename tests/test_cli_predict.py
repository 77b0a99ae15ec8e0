"""``sansa predict`` end to end on the tiny model, and every kind of bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.cli_helpers import assert_one_line_error, run_sansa
from tests.conftest import TINY_YAML, blob_mask


def test_predict_writes_masks_overlays_and_summary(scene, tiny_model_args, capsys, monkeypatch):
    import sansa_cli.core.images

    (r0, m0), (r1, m1) = scene["refs"][:2]
    out = scene["dir"] / "out"
    opened, real_open = [], sansa_cli.core.images._open

    def counting_open(src, what):
        opened.append(str(src))
        return real_open(src, what)

    monkeypatch.setattr(sansa_cli.core.images, "_open", counting_open)
    code, stdout, err = run_sansa(
        ["predict", r0, m0, scene["dir"] / "targets", "--ref", r1, m1, "--out", out,
         "--overlay", "--json", "--adapters", "none", "--batch-size", "3", *tiny_model_args],
        capsys, monkeypatch)
    assert code == 0, err
    for target in scene["targets"]:
        mask = np.asarray(Image.open(out / f"{target.stem}.png"))
        with Image.open(target) as img:
            assert mask.shape == (img.height, img.width)
        assert set(np.unique(mask)) <= {0, 255}
        assert (out / f"{target.stem}_overlay.jpg").is_file()
    summary = json.loads((out / "predictions.json").read_text())
    assert len(summary["references"]) == 2
    assert [t["mask"] for t in summary["targets"]] == [f"{t.stem}.png" for t in scene["targets"]]
    assert all(0 <= t["object_score"] <= 1 for t in summary["targets"])
    assert "targets" in stdout
    assert not list(out.glob("*.part"))
    # each target image is decoded once, for the model and its overlay picture alike
    assert sorted(p for p in opened if "targets" in p) == sorted(map(str, scene["targets"]))
    assert [t["image"] for t in summary["targets"]] == list(map(str, scene["targets"]))


def test_python_api_matches_cli_masks(scene, tiny_checkpoint, tiny_model_args, capsys,
                                      monkeypatch):
    from sansa_cli import load_model

    model = load_model(sam2=str(TINY_YAML), sam2_checkpoint=tiny_checkpoint, adapters="none",
                       device="cpu")
    ref_img, ref_mask = scene["refs"][0]
    pil_ref = Image.open(ref_img)
    array_mask = np.asarray(Image.open(ref_mask)) > 0
    results = model.predict(references=[(pil_ref, array_mask)], targets=scene["targets"][:2])
    out = scene["dir"] / "api"
    code, _, err = run_sansa(["predict", ref_img, ref_mask, *scene["targets"][:2], "--out", out,
                              "--adapters", "none", *tiny_model_args],
                             capsys, monkeypatch)
    assert code == 0, err
    for target, result in zip(scene["targets"], results):
        assert result.mask.dtype == bool
        written = np.asarray(Image.open(out / f"{target.stem}.png")) > 0
        np.testing.assert_array_equal(written, result.mask)


def _bad(scene, tmp_path):
    ref, mask = scene["refs"][0]
    wrong_size = blob_mask(tmp_path / "small_mask.png", size=(30, 30))
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((80, 96), np.uint8)).save(empty)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    no_images = tmp_path / "no_images"
    no_images.mkdir()
    (no_images / "notes.txt").write_text("x")
    target = scene["targets"][0]
    return {
        "missing reference": ([tmp_path / "nope.png", mask, target], "does not exist"),
        "unreadable mask": ([ref, broken, target], "cannot be read"),
        "mask of another size": ([ref, wrong_size, target], "30x30"),
        "empty mask": ([ref, empty, target], "empty"),
        "folder without images": ([ref, mask, no_images], "holds no images"),
        "broken target": ([ref, mask, broken], "cannot be read"),
        "output over an input": ([ref, mask, target, "--out", target.parent], "overwrite"),
        "unknown sam2 name": ([ref, mask, target, "--sam2", "sam3_hiera_huge"], "unknown SAM2"),
        "missing adapter file": ([ref, mask, target, "--adapters", tmp_path / "a.safetensors"],
                                 "does not exist"),
    }


CASES = ["missing reference", "unreadable mask", "mask of another size", "empty mask",
         "folder without images", "broken target", "output over an input", "unknown sam2 name",
         "missing adapter file"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_clear_line(case, scene, tmp_path, tiny_checkpoint, capsys, monkeypatch):
    args, fragment = _bad(scene, tmp_path)[case]
    if "--sam2" not in args:
        args = [*args, "--sam2", TINY_YAML]
    if "--adapters" not in args:
        args = [*args, "--adapters", "none"]
    before = sorted(p for p in tmp_path.rglob("*"))
    code, _, err = run_sansa(["predict", *args, "--sam2-checkpoint", tiny_checkpoint],
                             capsys, monkeypatch)
    assert_one_line_error(code, err, fragment)
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written


def test_bad_flag_is_a_usage_error(scene, capsys, monkeypatch):
    ref, mask = scene["refs"][0]
    code, _, err = run_sansa(["predict", ref, mask, scene["targets"][0], "--device", "gpu"],
                             capsys, monkeypatch)
    assert code == 2 and "gpu" in err


def test_help_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from sansa_cli.cli.app import app; "
            "assert 'torch' not in sys.modules and 'sam2' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)
    out = subprocess.run([sys.executable, "-m", "sansa_cli", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "predict" in out and "info" in out


@pytest.mark.parametrize("marking", [
    ["--points", "30,40;40,40", "--neg-points", "5,5"],
    ["--box", "15,15,60,65"],
    ["--scribble", "SCRIBBLE"],
])
def test_prompted_reference_through_the_cli(marking, scene, tiny_model_args, capsys, monkeypatch):
    ref, _mask = scene["refs"][0]
    strokes = np.zeros((80, 96), np.uint8)
    strokes[38:42, 25:50] = 255
    Image.fromarray(strokes).save(scene["dir"] / "scribble.png")
    marking = [str(scene["dir"] / "scribble.png") if m == "SCRIBBLE" else m for m in marking]
    out = scene["dir"] / "prompted"
    code, _, err = run_sansa(["predict", ref, *scene["targets"][:2], *marking, "--out", out,
                              "--overlay", "--adapters", "none", *tiny_model_args],
                             capsys, monkeypatch)
    assert code == 0, err
    assert (out / f"{scene['targets'][0].stem}.png").is_file()
    with Image.open(out / f"{scene['targets'][0].stem}_overlay.jpg") as sheet:
        assert sheet.width > 96  # the target plus the marked reference beside it


@pytest.mark.parametrize("marking, fragment", [
    (["--box", "10,10,10,50"], "zero area"),
    (["--box", "10,10,500,50"], "outside"),
    (["--points", "300,20"], "outside"),
    (["--points", "nope"], "x,y"),
    (["--scribble", "EMPTY"], "empty"),
    (["--box", "1,1,5,5", "--points", "2,2"], "one way"),
])
def test_bad_prompts(marking, fragment, scene, tiny_model_args, capsys, monkeypatch):
    ref, _ = scene["refs"][0]
    Image.fromarray(np.zeros((80, 96), np.uint8)).save(scene["dir"] / "empty_scribble.png")
    marking = [str(scene["dir"] / "empty_scribble.png") if m == "EMPTY" else m for m in marking]
    code, _, err = run_sansa(["predict", ref, scene["targets"][0], *marking, "--adapters", "none",
                              *tiny_model_args], capsys, monkeypatch)
    assert_one_line_error(code, err, fragment)


def test_extra_references_take_prompts(scene, tiny_model_args, capsys, monkeypatch):
    (r0, m0), (r1, _m1) = scene["refs"][:2]
    out = scene["dir"] / "mixed"
    code, _, err = run_sansa(["predict", r0, m0, scene["targets"][0], "--ref", r1,
                              "box:5,5,40,40", "--ref", r1, "points:20,20|neg:2,2", "--out", out,
                              "--json", "--adapters", "none", *tiny_model_args],
                             capsys, monkeypatch)
    assert code == 0, err
    summary = json.loads((out / "predictions.json").read_text())
    assert len(summary["references"]) == 3


def test_default_model_is_used_without_adapters(scene, tiny_checkpoint, tmp_path, capsys,
                                                monkeypatch):
    """No --adapters: the authors' universal adapter (placed by hand here, converted on first
    use for the tiny SAM2) is layered on its base model, and the run says so."""
    from sansa_cli.artifacts.universal_adapter import ensure_default_adapters
    from tests.adapters_fixtures import TINY, TINY_DIMS, TINY_STAGE_BLOCKS, official_state, \
        write_official

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv("SANSA_CHECKPOINTS", str(folder))
    write_official(folder / "sansa_universal.pth",
                   official_state(TINY_DIMS, TINY_STAGE_BLOCKS, 0.8), channel_factor=0.8)
    ensure_default_adapters(download=False, base_model=TINY)  # converted for the tiny base
    ref, mask = scene["refs"][0]
    out = tmp_path / "default"
    code, _, err = run_sansa(["predict", ref, mask, scene["targets"][0], "--out", out, "--json",
                              "--sam2", TINY, "--sam2-checkpoint", tiny_checkpoint,
                              "--device", "cpu"], capsys, monkeypatch)
    assert code == 0, err
    summary = json.loads((out / "predictions.json").read_text())
    assert summary["adapters"] == "adaptformer" and summary["sam2"] == "tiny_sam2"
    assert summary["targets"][0]["object_score"] is None  # the release's base has no such head


def test_python_api_speaks_the_cli_vocabulary(tiny_checkpoint):
    """adapters='default' | 'none' | FILE and sam2_checkpoint=, as the CLI; old spellings are
    refused with the new name."""
    from sansa_cli import load_model
    from sansa_cli.errors import MissingFileError, UserInputError

    with pytest.raises(UserInputError, match="sam2_checkpoint="):
        load_model(sam2=str(TINY_YAML), checkpoint=tiny_checkpoint, adapters="none")
    with pytest.raises(UserInputError, match="adapters='none'"):
        load_model(sam2=str(TINY_YAML), sam2_checkpoint=tiny_checkpoint, adapters=None)
    with pytest.raises(MissingFileError, match="default SANSA model is missing"):
        load_model(sam2=str(TINY_YAML), sam2_checkpoint=tiny_checkpoint, download=False)
    model = load_model(sam2=str(TINY_YAML), sam2_checkpoint=tiny_checkpoint, adapters="none",
                       device="cpu")
    assert model.strategy is None


def test_without_out_it_says_first_that_nothing_is_saved(scene, tiny_model_args, capsys,
                                                         monkeypatch):
    import sansa_cli.api as api

    said_before = []
    real = api.load_model

    def load_model(*args, **kwargs):  # the warning must already be on stderr
        said_before.append("not saved" in capsys.readouterr().err)
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "load_model", load_model)
    ref, mask = scene["refs"][0]
    code, _, err = run_sansa(["predict", ref, mask, scene["targets"][0], "--adapters", "none",
                              *tiny_model_args], capsys, monkeypatch)
    assert code == 0, err
    assert said_before == [True]
