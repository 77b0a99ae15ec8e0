"""``sansa eval`` end to end on the tiny model: every dataset format, settings, resume, cache."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from sansa_cli import registry
from sansa_cli.artifacts.hashing import sha256_file
from tests.cli_helpers import run_sansa
from tests.eval_fixtures import (  # noqa: F401  (fixtures)
    adapter_file, episode_rows, eval_roots, model_args, read_results,
)

DATASETS = [n for n in registry.names("dataset")
            if set(registry.load("dataset", n).splits) & {"val", "test"}]  # not training-only


def eval_args(name, roots, checkpoint, out, *extra):
    if name not in roots:
        pytest.skip(f"no tiny-dataset fixture for third-party dataset plugin '{name}'")
    root, options = roots[name]
    opts = [a for k, v in options.items() for a in ("--dataset-option", f"{k}={v}")]
    return ["eval", "--dataset", name, "--data-root", root, "--out", out, *opts,
            *model_args(checkpoint), *extra]


@pytest.mark.parametrize("name", DATASETS)
def test_eval_every_dataset_format(name, eval_roots, tiny_checkpoint, tmp_path, capsys,
                                   monkeypatch):
    out = tmp_path / "out"
    code, stdout, err = run_sansa(eval_args(name, eval_roots, tiny_checkpoint, out, "--folds", "0",
                                            "--shots", "1,2", "--episodes-per-fold", "3"),
                                  capsys, monkeypatch)
    assert code == 0, err
    assert "mean" in stdout and "1-shot mIoU" in stdout
    results = read_results(out)
    cls = registry.load("dataset", name)
    assert results["settings"]["canvas"] == (cls.default_canvas or "original")
    assert [(r["fold"], r["shot"], r["episodes"]) for r in results["results"]] == \
        [(0, 1, 3), (0, 2, 3)]
    for r in results["results"]:
        assert 0 <= r["miou"] <= 100 and 0 <= r["fb_iou"] <= 100 and r["seconds_per_episode"] > 0
    with (out / "per_class.csv").open() as f:
        rows = list(csv.DictReader(f))
    classes = results["results"][0]["classes"]
    assert len(rows) == 2 * classes  # every class of the fold, sampled or not
    assert sum(int(r["episodes"]) for r in rows) == 6
    assert len(episode_rows(out)) == 6 and not list(out.glob("*.part"))


def test_results_record_every_setting(eval_roots, tiny_checkpoint, tmp_path, capsys, monkeypatch):
    for fold in (0, 1):
        adapter_file(tmp_path / f"ad_fold{fold}.safetensors", seed=fold)
    out, preds = tmp_path / "out", tmp_path / "preds"
    code, stdout, err = run_sansa(eval_args(
        "pascal5i", eval_roots, tiny_checkpoint, out, "--folds", "0,1", "--shots", "1",
        "--episodes-per-fold", "2", "--adapters", str(tmp_path / "ad_fold{fold}.safetensors"),
        "--compare-frozen", "--prompt", "box", "--canvas", "original", "--seed", "4",
        "--save-predictions", preds, "--visualize", "3"), capsys, monkeypatch)
    assert code == 0, err
    s = read_results(out)["settings"]
    assert s["sam2_checkpoint_sha256"] == sha256_file(tiny_checkpoint)
    assert s["adapters"]["1"]["sha256"] == sha256_file(tmp_path / "ad_fold1.safetensors")
    assert s["adapters"]["0"]["sha256"] != s["adapters"]["1"]["sha256"]
    assert (s["canvas"], s["prompt"], s["seed"], s["dataset"]) == ("original", "box", 4, "pascal5i")
    assert len(s["episode_lists"]) == 2 and all(len(e["sha256"]) == 64 for e in s["episode_lists"])
    assert set(read_results(out)["versions"]) >= {"sansa", "torch", "sam2", "numpy"}
    assert {r["model"] for r in read_results(out)["results"]} == {"adapted", "frozen"}
    assert "adapted" in stdout and "frozen" in stdout  # both models in the table
    assert all(r["prompts"] == ["box"] for r in episode_rows(out))
    assert sorted(p.name for p in preds.glob("*.png")) == [
        "0_1shot_0.png", "0_1shot_1.png", "1_1shot_0.png", "1_1shot_1.png"]
    assert len(list((preds / "frozen").glob("*.png"))) == 4
    # --canvas original: masks at the query's own size (pascal fixtures are 32x24)
    from PIL import Image

    assert Image.open(preds / "0_1shot_0.png").size == (32, 24)
    assert len(list((out / "pictures").glob("*.png"))) == 3


def test_a_frozen_episode_list_replays_the_sampled_episodes(eval_roots, tiny_checkpoint,
                                                            tmp_path, capsys, monkeypatch):
    from sansa_cli.datasets.prepare import write_episode_lists

    root, options = eval_roots["fss1000"]
    cls = registry.load("dataset", "fss1000")
    write_episode_lists(cls, root, options, [0], [1], tmp_path / "lists", seed=0, count=5)
    runs = {}
    for how, extra in (("sampled", []), ("listed", ["--episodes", tmp_path / "lists"])):
        out = tmp_path / how
        code, _, err = run_sansa(eval_args("fss1000", eval_roots, tiny_checkpoint, out, "--shots",
                                           "1", "--episodes-per-fold", "5", *extra),
                                 capsys, monkeypatch)
        assert code == 0, err
        runs[how] = read_results(out)
    hashes = {how: r["settings"]["episode_lists"][0]["sha256"] for how, r in runs.items()}
    assert hashes["sampled"] == hashes["listed"]
    assert runs["listed"]["settings"]["episode_lists"][0]["source"].endswith(".json")
    for a, b in zip(runs["sampled"]["results"], runs["listed"]["results"], strict=True):
        assert (a["miou"], a["fb_iou"], a["episodes"]) == (b["miou"], b["fb_iou"], b["episodes"])


def test_resume_after_an_interruption_gives_the_same_results(eval_roots, tiny_checkpoint,
                                                             tmp_path, capsys, monkeypatch):
    from sansa_cli.evaluation import episodes as episodes_module

    args = ("--folds", "0", "--shots", "1,2", "--episodes-per-fold", "4", "--prompt", "mixed")
    whole = tmp_path / "whole"
    code, _, err = run_sansa(eval_args("coco20i", eval_roots, tiny_checkpoint, whole, *args),
                             capsys, monkeypatch)
    assert code == 0, err

    real, calls = episodes_module.run_episode, []

    def crash_after_five(*a, **k):
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*a, **k)

    resumed = tmp_path / "resumed"
    with monkeypatch.context() as m:
        m.setattr(episodes_module, "run_episode", crash_after_five)
        code, _, _ = run_sansa(eval_args("coco20i", eval_roots, tiny_checkpoint, resumed, *args),
                               capsys, monkeypatch)
    assert code == 130 and not (resumed / "results.json").exists()
    assert len(episode_rows(resumed)) == 5
    with (resumed / "episodes.jsonl").open("a") as f:
        f.write('{"index": 5, "torn')  # a crash in the middle of a write
    code, _, err = run_sansa(eval_args("coco20i", eval_roots, tiny_checkpoint, resumed, *args),
                             capsys, monkeypatch)
    assert code == 0, err
    a, b = read_results(whole), read_results(resumed)
    assert a["results"] == [{**r, "seconds_per_episode": a["results"][i]["seconds_per_episode"],
                             "peak_memory_mb": a["results"][i]["peak_memory_mb"]}
                            for i, r in enumerate(b["results"])]
    assert b["run"]["episodes_resumed"] == 5 and b["run"]["episodes_run"] == 3
    assert (whole / "per_class.csv").read_text() == (resumed / "per_class.csv").read_text()
    # a restart under other settings is refused instead of mixing numbers
    code, _, err = run_sansa(eval_args("coco20i", eval_roots, tiny_checkpoint, resumed, *args,
                                       "--canvas", "320"), capsys, monkeypatch)
    assert code == 1 and "other settings (canvas)" in err and len(err.strip().splitlines()) == 1


def test_cached_features_give_the_predictions_of_uncached_ones(eval_roots, tiny_checkpoint):
    from sansa_cli import load_model
    from sansa_cli.evaluation.cache import FeatureCache
    from sansa_cli.evaluation.episodes import run_episode
    from tests.conftest import TINY_YAML

    root, options = eval_roots["fss1000"]
    dataset = registry.load("dataset", "fss1000").create(root, 0, None, **options)
    episodes = dataset.episodes(3, seed=0, count=8)
    model = load_model(sam2=str(TINY_YAML), sam2_checkpoint=tiny_checkpoint, adapters="none",
                       device="cpu")
    cached, uncached = FeatureCache(64), FeatureCache(0)
    for episode in episodes:
        a = run_episode(model, dataset, episode, cached, 518)
        b = run_episode(model, dataset, episode, uncached, 518)
        np.testing.assert_array_equal(a.prediction, b.prediction)
        assert {k: a.row[k] for k in ("fg_intersection", "fg_union", "bg_union")} == \
            {k: b.row[k] for k in ("fg_intersection", "fg_union", "bg_union")}
    assert cached.hits > 10 and uncached.hits == 0 and len(uncached) == 0


def test_the_cache_stays_within_its_budget():
    import torch

    from sansa_cli.evaluation.cache import FeatureCache
    from sansa_cli.core.pseudo_video import FrameFeatures

    def encode(keys):  # 64 KiB of features per image; position encodings shared
        feats = [torch.full((4096, len(keys), 4), float(i)) for i in range(1)]
        for j, key in enumerate(keys):
            feats[0][:, j] = float(key)
        return FrameFeatures(feats, [torch.ones(4096, len(keys), 4)], [(64, 64)])

    cache = FeatureCache(max_mb=0.2)  # room for 3 images
    for key in ["1", "2", "3", "4", "2", "5"]:
        frames = cache.frames([key], encode, "cpu")
        assert float(frames.vision_feats[0][0, 0, 0]) == float(key)
    assert cache.bytes <= 0.2 * 2**20 and len(cache) == 3
    assert "2" in cache and "1" not in cache  # least recently used went first
    assert cache.hits == 1 and cache.misses == 5


def _per_class(out) -> list[tuple[int, int]]:
    """(shot, class id) of every row of per_class.csv."""
    with (out / "per_class.csv").open() as f:
        return [(int(r["shot"]), int(r["class_id"])) for r in csv.DictReader(f)]


def test_lvis_results_record_the_lineages_folds_of_each_shot(eval_roots, tiny_checkpoint,
                                                             tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    code, _, err = run_sansa(eval_args("lvis92i", eval_roots, tiny_checkpoint, out, "--folds",
                                       "0", "--shots", "1,5", "--episodes-per-fold", "1"),
                             capsys, monkeypatch)
    assert code == 0, err
    s = read_results(out)["settings"]
    assert s["dataset_options"]["membership"] == "lineage" and s["shots"] == [1, 5]
    assert [e["shot"] for e in s["episode_lists"]] == [1, 5]
    # each episode list records its own options (as JSON values), the first task's stand above
    assert s["dataset_options"]["shot"] == 1
    assert [e["options"]["shot"] for e in s["episode_lists"]] == [1, 5]
    # fold 0: category 1 (3 val images) at 1 shot; category 2 at 5 shots (the lineage's rule)
    assert _per_class(out) == [(1, 1), (5, 2)]




def test_a_resumed_eval_continues_from_another_working_directory(eval_roots, tiny_checkpoint,
                                                                 tmp_path, capsys, monkeypatch):
    from sansa_cli.evaluation import episodes as episodes_module

    root, _ = eval_roots["coco20i"]
    out = tmp_path / "out"
    model = [*model_args(tiny_checkpoint), "--folds", "0", "--shots", "1",
             "--episodes-per-fold", "4"]

    def args(data_root):  # every path typed relative to the working directory
        return ["eval", "--dataset", "coco20i", "--data-root", data_root, "--out", out,
                "--dataset-option", f"splits={data_root}/splits", "--dataset-option",
                f"image_root={data_root}", *model]

    real, calls = episodes_module.run_episode, []

    def crash_after_two(*a, **k):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*a, **k)

    monkeypatch.chdir(root.parent)
    with monkeypatch.context() as m:
        m.setattr(episodes_module, "run_episode", crash_after_two)
        code, _, _ = run_sansa(args(root.name), capsys, monkeypatch)
    assert code == 130 and len(episode_rows(out)) == 2
    monkeypatch.chdir(root)
    code, _, err = run_sansa(args("."), capsys, monkeypatch)
    assert code == 0, err
    results = read_results(out)
    assert results["run"]["episodes_resumed"] == 2 and results["run"]["episodes_run"] == 2
    assert results["settings"]["dataset_options"] == {
        "splits": str((root / "splits").resolve()), "image_root": str(root.resolve())}
