"""Input profiles: each rule that moves the numbers, and where profiles come from and go."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sansa_cli.core.images import mask_to_input, preprocess
from sansa_cli.core.input_profile import (RELEASE, SANSA_TRAINING, VIDEO_PREDICTOR, InputProfile,
                                          apply_profile_options, infer_profile)
from sansa_cli.errors import UserInputError
from tests.cli_helpers import assert_one_line_error, run_sansa
from tests.conftest import TINY_YAML
from tests.eval_fixtures import eval_roots  # noqa: F401  (a fixture)


def _disc(size=(90, 70), radius=20) -> np.ndarray:
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < radius ** 2


def test_the_release_rule_keeps_the_antialiasing_spill():
    mask = _disc()
    half, spill = mask_to_input(mask, 256, "half"), mask_to_input(mask, 256, "any")
    resized = F.interpolate(torch.from_numpy(mask.astype(np.float32))[None, None], (256, 256),
                            mode="bilinear", align_corners=False, antialias=True)[0]
    assert torch.equal(half, (resized >= 0.5).float())
    assert torch.equal(spill, (resized > 0).float())
    ring = spill.bool() & ~half.bool()
    assert ring.any() and not (half.bool() & ~spill.bool()).any()  # a strict superset: a ring
    assert torch.equal(mask_to_input(np.ones((256, 256), bool), 256, "any"),
                       torch.ones(1, 256, 256))  # at the model's size nothing is resized


def test_pre_resize_goes_through_the_canvas_first():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (90, 70, 3), dtype=np.uint8))
    direct = preprocess(image, 256, "antialias-bilinear")
    staged = preprocess(image, 256, "antialias-bilinear", pre_resize=64)
    tensor = torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None]
    canvas = F.interpolate(tensor, (64, 64), mode="bilinear", antialias=True)
    expected = F.interpolate(canvas, (256, 256), mode="bilinear", antialias=True)[0]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    torch.testing.assert_close(staged, (expected - mean) / std)
    assert not torch.allclose(direct, staged)
    mask = _disc()
    nearest = F.interpolate(torch.from_numpy(mask.astype(np.float32))[None, None], (64, 64),
                            mode="nearest")[0, 0].numpy() > 0
    assert torch.equal(mask_to_input(mask, 256, "half", pre_resize=64),
                       mask_to_input(nearest, 256, "half"))


@pytest.fixture()
def model(tiny_checkpoint):
    from sansa_cli import load_model

    return load_model(sam2=str(TINY_YAML), sam2_checkpoint=tiny_checkpoint, adapters="none",
                      device="cpu")


def _predict(model, profile, scene):
    model.profile = profile
    (ref, mask), targets = scene["refs"][0], scene["targets"]
    memory = model.encode_references([(ref, mask)])
    return memory, list(model.segment(memory, targets))


def test_each_rule_moves_the_prediction_and_memory_keeps_its_precision(model, scene):
    _, base = _predict(model, VIDEO_PREDICTOR, scene)
    memory, fp32 = _predict(model, VIDEO_PREDICTOR.replace(memory_dtype="fp32"), scene)
    assert memory.frames[0].features.dtype == torch.float32
    bf16_memory, _ = _predict(model, VIDEO_PREDICTOR, scene)
    assert bf16_memory.frames[0].features.dtype == torch.bfloat16
    torch.testing.assert_close(bf16_memory.frames[0].features.float(),
                               memory.frames[0].features, atol=0.05, rtol=0.02)
    _, spill = _predict(model, VIDEO_PREDICTOR.replace(mask_rule="any"), scene)
    _, bilinear = _predict(model, VIDEO_PREDICTOR.replace(resize="antialias-bilinear"), scene)
    for other in (fp32, spill, bilinear):
        diffs = [np.abs(a.low_res_logits - b.low_res_logits).max() for a, b in zip(base, other)]
        assert max(diffs) > 0


def test_profiles_from_presets_and_options():
    assert apply_profile_options(VIDEO_PREDICTOR, ["release"]) == RELEASE
    assert apply_profile_options(RELEASE, ["mask_rule=half", "pre_resize=false"]) == \
        InputProfile("antialias-bilinear", "half", "fp32", False)
    for bad, fragment in ((["fast"], "neither a preset"), (["colour=red"], "no setting"),
                          (["mask_rule=some"], "mask_rule 'some'"),
                          (["pre_resize=1"], "true or false")):
        with pytest.raises(UserInputError, match=fragment):
            apply_profile_options(VIDEO_PREDICTOR, bad)


def test_older_files_get_an_inferred_profile():
    assert infer_profile({"source": "official adapter_coco_fold0.pth"})[0] == RELEASE
    assert infer_profile({"image_resize": "antialias-bilinear"})[0] == RELEASE
    assert infer_profile({"source": "latest.pt"})[0] == VIDEO_PREDICTOR


def _export(tmp_path):
    from sansa_cli.artifacts.train_checkpoint import export_training_checkpoint
    from tests.adapters_fixtures import adapted, write_training_checkpoint

    _, _, trainable = adapted()
    write_training_checkpoint(tmp_path / "run", "adaptformer", {"bottleneck": 0.3}, trainable)
    return export_training_checkpoint(tmp_path / "run", tmp_path / "a.safetensors")


def test_trained_files_record_the_training_profile_and_info_shows_it(tmp_path, capsys,
                                                                     monkeypatch):
    from sansa_cli.artifacts.adapter_file import read_adapter_info, save_adapter_file
    from safetensors.torch import load_file

    path = _export(tmp_path)
    assert read_adapter_info(path).profile() == (SANSA_TRAINING, "recorded")
    code, out, err = run_sansa(["export-adapters", "--info", path], capsys, monkeypatch)
    assert code == 0, err
    assert "input profile" in out and "memory fp32 (recorded)" in out
    old = read_adapter_info(path)  # as written before profiles existed
    old.input_profile = None
    older = save_adapter_file(tmp_path / "old.safetensors", load_file(str(path)), old)
    assert read_adapter_info(older).profile()[0] == VIDEO_PREDICTOR
    code, out, _ = run_sansa(["export-adapters", "--info", older], capsys, monkeypatch)
    assert "inferred" in out


def test_predict_records_the_profile_and_adapter_file(tmp_path, scene, tiny_checkpoint, capsys,
                                                      monkeypatch):
    from sansa_cli.artifacts.hashing import sha256_file

    path = _export(tmp_path)
    (ref, mask), target = scene["refs"][0], scene["targets"][0]
    args = ["predict", ref, mask, target, "--adapters", path, "--sam2", TINY_YAML,
            "--sam2-checkpoint", tiny_checkpoint, "--device", "cpu", "--json"]
    code, _, err = run_sansa([*args, "--out", tmp_path / "a", "--input-profile", "mask_rule=any"],
                             capsys, monkeypatch)
    assert code == 0, err
    summary = json.loads((tmp_path / "a" / "predictions.json").read_text())
    assert summary["input_profile"] == dataclasses.asdict(SANSA_TRAINING.replace(mask_rule="any"))
    assert summary["adapter_file"] == str(path.resolve())
    assert summary["adapter_sha256"] == sha256_file(path)
    code, _, err = run_sansa([*args, "--out", tmp_path / "b", "--input-profile", "fast"],
                             capsys, monkeypatch)
    assert_one_line_error(code, err, "--input-profile 'fast'")
    assert not (tmp_path / "b").exists()


def test_a_pre_resize_profile_feeds_evaluation_through_the_dataset_canvas(eval_roots, model,
                                                                          monkeypatch):
    """With ``pre_resize`` every image and reference mask of an episode goes through the
    dataset's canvas (FSS-1000: 518) first, as the release's loaders do; without, it does not."""
    from sansa_cli import registry
    from sansa_cli.evaluation.cache import FeatureCache
    from sansa_cli.evaluation.episodes import run_episode

    root, options = eval_roots["fss1000"]
    dataset = registry.load("dataset", "fss1000").create(root, 0, None, **options)
    episode = dataset.episodes(1, seed=0, count=1)[0]
    seen = []
    encode = model.encode_images

    def spy(images, on_batch=None, pre_resize=None):
        seen.append(pre_resize)
        return encode(images, on_batch, pre_resize)

    monkeypatch.setattr(model, "encode_images", spy)
    model.profile = RELEASE.replace(pre_resize=False)
    plain = run_episode(model, dataset, episode, FeatureCache(0), 518)
    model.profile = RELEASE
    staged = run_episode(model, dataset, episode, FeatureCache(0), 518)
    assert seen == [None, 518]
    assert plain.prediction.shape == staged.prediction.shape == (518, 518)
    assert plain.row["fg_union"] != staged.row["fg_union"] or \
        plain.row["fg_intersection"] != staged.row["fg_intersection"] or \
        not np.array_equal(plain.prediction, staged.prediction)


def test_eval_records_the_profiles(eval_roots, tiny_checkpoint, tmp_path, capsys, monkeypatch):
    from tests.eval_fixtures import model_args, read_results

    root, options = eval_roots["fss1000"]
    out = tmp_path / "eval"
    code, _, err = run_sansa(["eval", "--dataset", "fss1000", "--data-root", root, "--shots", "1",
                              "--episodes-per-fold", "2", "--out", out,
                              "--input-profile", "memory_dtype=fp32",
                              *[f"--dataset-option={k}={v}" for k, v in options.items()],
                              *model_args(tiny_checkpoint)], capsys, monkeypatch)
    assert code == 0, err
    settings = read_results(out)["settings"]
    assert settings["input_profiles"] == {
        "none": dataclasses.asdict(VIDEO_PREDICTOR.replace(memory_dtype="fp32"))}
    assert settings["input_profile_options"] == ["memory_dtype=fp32"]


def test_converted_release_files_record_the_release_profile(tmp_path):
    from sansa_cli.artifacts.adapter_file import read_adapter_info
    from sansa_cli.artifacts.official import convert_official
    from tests.adapters_fixtures import (TINY, TINY_DIMS, TINY_STAGE_BLOCKS, official_state,
                                         write_official)

    src = write_official(tmp_path / "x.pth", official_state(TINY_DIMS, TINY_STAGE_BLOCKS, 0.3))
    path = convert_official(src, tmp_path / "a.safetensors", base_model=TINY)
    assert read_adapter_info(path).profile() == (RELEASE, "recorded")
