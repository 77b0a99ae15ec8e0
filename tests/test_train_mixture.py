"""Training on a mixture of datasets (``--dataset mix --mix ...``) and on every class
(``--fold all``): the weighted, seeded episode stream, mixed batches, exact resume, per-dataset
validation, the one-line checks before any work, and what ``config.yaml`` records."""

from __future__ import annotations

import pytest
import torch
import yaml

from sansa_cli import registry
from sansa_cli.datasets.folder import Folder
from sansa_cli.errors import UserInputError
from sansa_cli.train.episode_data import epoch_episodes
from sansa_cli.train.loop import Run
from sansa_cli.train.mixture import Mixture
from tests.cli_helpers import assert_one_line_error, run_sansa
from tests.datasets_fixtures import make_coco_source, make_lvis92i, make_pascal5i
from tests.train_fixtures import (adapter_tensors, config, latest_checkpoint, log_rows,  # noqa: F401
                                  mix_config, mix_data, no_model_work, setup, with_plugins)


class TrainOnly(Folder):
    """A training-only dataset, as ADE20K: no evaluation split."""

    name = "trainonly"
    splits = ("train",)
    eval_split = "train"


class TwoFolds(Folder):
    """A plugin with two folds that has not said how to build with every class."""

    name = "twofolds"
    num_folds = 2
    supports_all_folds = False


def members(mix_data: dict, fold=None) -> dict:
    return {name: registry.load("dataset", name).create(root, fold, "train")
            for name, root in mix_data.items()}


def test_dataset_choice_follows_the_weights_and_the_seed(mix_data):
    """Weights 3:1 (normalised, not summing to 1): 75% of 4000 episodes are the folder's; the
    stream is a function of (seed, epoch) only; every episode's images are of one dataset."""
    mixture = Mixture(members(mix_data), {"folder": 3, "coco20i": 1})
    episodes = epoch_episodes(mixture, 7, 0, 4000, 2)
    share = sum(e.reference.startswith("folder:") for e in episodes) / len(episodes)
    assert abs(share - 0.75) < 0.03, share  # 4.4 standard deviations
    assert epoch_episodes(mixture, 7, 0, 4000, 2) == episodes
    assert epoch_episodes(mixture, 7, 1, 50, 2) != episodes[:50]
    assert epoch_episodes(mixture, 8, 0, 50, 2) != episodes[:50]
    for episode in episodes[:20]:
        names = {i.partition(":")[0] for i in (episode.reference, *episode.targets)}
        assert len(names) == 1
        assert mixture.load_mask(episode.reference, episode.class_id).any()
    assert mixture.describe() == "mixture of folder 75%, coco20i 25%"


@pytest.fixture(scope="module")
def fold_roots(tmp_path_factory, mix_data) -> dict:
    import json

    from sansa_cli.datasets.prepare_coco import build_coco20i

    coco = make_coco_source(tmp_path_factory.mktemp("coco") / "coco", (0, 5, 10, 15), (1, 2, 3, 4))
    build_coco20i(coco, min_pixels=1)  # images of every fold's val and train classes
    lvis, _ = make_lvis92i(tmp_path_factory.mktemp("lvis") / "lvis")
    pascal, _ = make_pascal5i(tmp_path_factory.mktemp("pascal") / "pascal")
    folder = tmp_path_factory.mktemp("folder")
    (folder / "splits.json").write_text(json.dumps({"folds": [
        {"train": ["bolt", "nut"], "test": ["washer"]},
        {"train": ["nut", "washer"], "test": ["bolt"]}]}))
    options = {"splits": str(folder / "splits.json")}
    return {"coco20i": (coco, {}), "lvis92i": (lvis, {}),
            "pascal5i": (pascal, {}), "folder": (mix_data["folder"], options)}


@pytest.mark.parametrize("name", ["coco20i", "lvis92i", "pascal5i", "folder"])
def test_fold_all_holds_out_nothing(name, fold_roots):
    """Built with ``fold=None`` a plugin holds every class and image of every fold: each fold's
    training classes and its held-out (evaluation) classes train, and validation sees every
    fold's evaluation classes (no fold silently held out, as the release's PACO fold 3 was)."""
    cls = registry.load("dataset", name)
    root, options = fold_roots[name]
    every = cls.create(root, None, "train", **options)
    every_eval = cls.create(root, None, cls.eval_split, **options)
    folds = every.num_folds if name == "folder" else cls.num_folds
    assert folds > 1 and every.fold is None and "fold all" in every.describe()
    for fold in range(folds):
        train = cls.create(root, fold, "train", **options)
        held_out = cls.create(root, fold, cls.eval_split, **options)
        assert set(train.classes) | set(held_out.classes) <= set(every.classes)
        assert set(held_out.classes) <= set(every_eval.classes)
        for cid in train.classes:
            assert set(train.images(cid)) <= set(every.images(cid))
        for cid in held_out.classes:
            assert set(held_out.images(cid)) <= set(every_eval.images(cid))
    if name in ("coco20i", "pascal5i"):
        assert every.classes == every_eval.classes == list(range(len(every.classes)))


def test_fold_all_with_one_fold_needs_nothing_and_several_folds_must_opt_in(mix_data, fold_roots):
    fss = registry.load("dataset", "fss1000")  # one fold, no support declared: fold 0
    assert not fss.supports_all_folds and fss.num_folds == 1
    folder = TrainOnly.create(mix_data["folder"], None, None)  # as ADE20K: one fold
    assert folder.classes == [0, 1, 2]
    with pytest.raises(UserInputError, match="cannot train on every class") as info:
        TwoFolds.create(mix_data["folder"], None, "train")
    assert "\n" not in str(info.value) and "give a fold 0..1" in str(info.value)


def test_a_mixed_batch_trains_and_validation_scores_each_dataset(setup, mix_data, tmp_path,
                                                                 capsys, monkeypatch):
    """Through the CLI: three datasets, one of them training-only; the first batch mixes
    datasets, one step trains, validation prints a line per dataset and skips the training-only
    one with a note, and config.yaml records the weights, roots, fold and options."""
    with_plugins(monkeypatch, trainonly=TrainOnly)
    folder, coco = mix_data["folder"], mix_data["coco20i"]
    run = tmp_path / "mix"
    code, _, err = run_sansa(
        ["train", "--dataset", "mix", "--mix", "folder:0.5,coco20i:0.3,trainonly:0.2",
         "--data-root", f"folder={folder},coco20i={coco}", "--data-root", f"trainonly={folder}",
         "--dataset-option", f"coco20i.splits={coco / 'splits'}", "--fold", "all",
         "--val-episodes", "2", "--steps", "1", "--batch-size", "4", "--seq-len", "1",
         "--seed", "3", "--out", run, "--sam2", config(setup).sam2, "--sam2-checkpoint",
         setup["ckpt"], "--device", "cpu", "--workers", "0"], capsys, monkeypatch)
    assert code == 0, err
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["mix"] == {"folder": 0.5, "coco20i": 0.3, "trainonly": 0.2}
    assert saved["data_root"] == {"folder": str(folder.resolve()), "coco20i": str(coco.resolve()),
                                  "trainonly": str(folder.resolve())}
    assert saved["fold"] == "all" and saved["dataset"] == "mix"
    assert saved["dataset_options"] == {"coco20i": {"splits": str(coco / "splits")}}
    built = {**members(mix_data), "trainonly": TrainOnly.create(folder, None, "train")}
    first = epoch_episodes(Mixture(built, saved["mix"]), 3, 0, 4, 1)
    assert len({e.reference.partition(":")[0] for e in first}) >= 2  # a mixed batch
    assert any(v.abs().sum() > 0 for k, v in adapter_tensors(run).items() if "up_proj" in k)
    lines = err.splitlines()
    assert "training on a mixture of folder 50%, coco20i 30%, trainonly 20%" in lines
    assert any(x.startswith("warning: trainonly has no evaluation split") for x in lines)
    assert any("validation mIoU folder " in x for x in lines)
    assert any("validation mIoU coco20i " in x for x in lines)
    assert any("trainonly not validated" in x for x in lines)
    row = [r for r in log_rows(run) if "val_miou" in r][0]
    assert set(row["val_datasets"]) == {"folder", "coco20i"} and row["val_skipped"] == ["trainonly"]
    scores = [v["miou"] for v in row["val_datasets"].values()]
    assert row["val_miou"] == pytest.approx(sum(scores) / 2)
    assert row["val_episodes"] == 4


def test_an_interrupted_mixture_run_resumes_exactly(setup, mix_data, tmp_path, capsys,
                                                    monkeypatch):
    """Stopped mid-epoch and resumed with ``sansa train --resume`` (the config read back from
    config.yaml, whose keys are sorted), a mixture run ends with the weights of an uninterrupted
    one: the episode stream is rebuilt from the seed and the epoch, whatever the mix's order."""
    cfg = mix_config(setup, mix_data, mix={"folder": 3, "coco20i": 1}, steps=3,
                     episodes_per_epoch=4, seq_len=1)  # 2 steps per epoch
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    Run(cfg, whole, quiet=True).train()
    with pytest.raises(KeyboardInterrupt):
        Run(cfg, parts, stop_at_step=1, quiet=True).train()
    code, _, err = run_sansa(["train", "--resume", parts], capsys, monkeypatch)
    assert code == 0, err
    a, b = adapter_tensors(whole), adapter_tensors(parts)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert latest_checkpoint(parts)["step"] == 3


def test_a_config_file_mixture_takes_roots_from_the_command_line(setup, mix_data, tmp_path):
    """A file's roots and a flag's NAME=DIR are merged (the flag wins for its dataset); file
    options may be nested or dotted."""
    from sansa_cli.train.config import load_config
    from sansa_cli.train.mixture import parse_roots

    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump({
        "dataset": "mix", "mix": {"folder": 1, "coco20i": 2}, "fold": "all",
        "data_root": {"folder": "elsewhere"},
        "dataset_options": {"coco20i.splits": "s", "folder": {"splits": "f.json"}}}))
    roots = parse_roots([f"folder={mix_data['folder']},coco20i={mix_data['coco20i']}"])
    loaded = load_config(path, {"data_root": roots})
    assert loaded.data_root == {k: str(v.resolve()) for k, v in mix_data.items()}
    assert loaded.dataset_options == {"coco20i": {"splits": "s"}, "folder": {"splits": "f.json"}}
    only = load_config(path, {"data_root": parse_roots([f"coco20i={mix_data['coco20i']}"])})
    assert only.data_root["folder"].endswith("elsewhere")
    assert parse_roots(["data/a,b"]) == "data/a,b"  # one folder, even with a comma


@pytest.mark.parametrize("args, fragment", [
    (["--mix", "folder:1,nope:1", "--data-root", "folder=D,nope=D"],
     "--mix: unknown dataset 'nope'"),
    (["--mix", "folder:0,coco20i:1", "--data-root", "folder=D,coco20i=C"],
     "--mix: the weight of folder is '0'; give a positive finite number"),
    (["--mix", "folder:nan,coco20i:1", "--data-root", "folder=D,coco20i=C"],
     "the weight of folder is 'nan'"),
    (["--mix", "folder:-1,coco20i:x", "--data-root", "folder=D,coco20i=C"],
     "the weight of folder is '-1'"),
    (["--mix", "folder,coco20i:1", "--data-root", "folder=D,coco20i=C"],
     "item 'folder' is not NAME:WEIGHT"),
    (["--mix", "folder:1,folder:2", "--data-root", "folder=D"], "--mix names folder twice"),
    (["--mix", "folder:1,coco20i:1", "--data-root", "folder=D"],
     "--data-root has no folder for coco20i; give --data-root coco20i=DIR"),
    (["--mix", "folder:1,coco20i:1"], "--data-root has no folder for folder, coco20i"),
    (["--mix", "folder:1,coco20i:1", "--data-root", "folder=D,coco20i=C,fss1000=D"],
     "--data-root names fss1000, which is not in --mix"),
    (["--mix", "folder:1,coco20i:1", "--data-root", "D"], "a mixture needs one per dataset"),
    (["--data-root", "D"], "--dataset mix needs --mix"),
    (["--mix", "folder:1,coco20i:1", "--data-root", "folder=D,coco20i=C", "--dataset-option",
      "fss1000.splits=x"], "is for fss1000, which is not in --mix"),
    (["--mix", "folder:1,coco20i:1", "--data-root", "folder=D,coco20i=C", "--dataset-option",
      "splits=x"], "names no dataset; in a mixture give NAME.KEY=VALUE"),
    (["--mix", "folder:1,twofolds:1", "--data-root", "folder=D,twofolds=D"],
     "dataset 'twofolds' cannot train on every class (fold all)"),
    (["--mix", "folder:1,coco20i:1", "--data-root", "folder=D,coco20i=C", "--fold", "most"],
     "--fold is 'most', not a whole number or all"),
    (["--mix", "folder:1,coco20i:1", "--data-root", "folder=D,coco20i=C", "--fold", "-1"],
     "--fold is -1; it must be at least 0, or all (every class: what the release's -1 meant)"),
])
def test_bad_mixtures_are_one_line_before_any_work(args, fragment, setup, mix_data, tmp_path,
                                                   capsys, monkeypatch, no_model_work):
    with_plugins(monkeypatch, twofolds=TwoFolds)
    fill = {"D": str(mix_data["folder"]), "C": str(mix_data["coco20i"])}
    args = [",".join("=".join(fill.get(p, p) for p in item.split("=")) for item in a.split(","))
            if "=" in a else fill.get(a, a) for a in args]
    fold = [] if "--fold" in args else ["--fold", "all"]
    code, _, err = run_sansa(["train", "--dataset", "mix", *args, *fold, "--out", tmp_path / "r",
                              "--sam2", config(setup).sam2, "--sam2-checkpoint", setup["ckpt"],
                              "--device", "cpu"], capsys, monkeypatch)
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "r").exists()


def test_a_weight_from_a_file_is_named_with_the_file(setup, mix_data, tmp_path, capsys,
                                                     monkeypatch, no_model_work):
    path = tmp_path / "mix.yaml"
    path.write_text("dataset: mix\nmix: {folder: 0.5, coco20i: -0.5}\n")
    code, _, err = run_sansa(["train", "--config", path, "--out", tmp_path / "r"], capsys,
                             monkeypatch)
    assert_one_line_error(code, err, f"mix in {path}: the weight of coco20i is -0.5")


def test_one_dataset_trains_on_every_class_with_fold_all(setup, tmp_path):
    """--fold all is valid for a single dataset too; a NAME=DIR root naming it is accepted."""
    cfg = config(setup, fold="all", steps=1, seq_len=1,
                 data_root={"folder": str(setup["data"])})
    run = Run(cfg, tmp_path / "one", quiet=True)
    run.train()
    assert run.parts.dataset.fold is None and run.parts.dataset.classes == [0, 1, 2]
    saved = yaml.safe_load((tmp_path / "one" / "config.yaml").read_text())
    assert saved["fold"] == "all" and saved["data_root"] == {"folder": str(setup["data"])}
