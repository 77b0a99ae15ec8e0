"""Every registered dataset plugin, on a tiny copy of its real on-disk format: the shared
contract."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
from pathlib import Path

import numpy as np
import pytest

from sansa_cli import registry
from sansa_cli.datasets import read_episode_list, write_episode_list
from sansa_cli.datasets.base import FewShotDataset
from sansa_cli.errors import DatasetError, MissingFileError, UserInputError
from tests.datasets_fixtures import BUILDERS

DATASETS = registry.names("dataset")
CANVAS = {"coco20i": 640, "lvis92i": 640, "fss1000": 518, "pascal5i": None, "folder": None,
          "pascal_part": 518, "paco_part": 640, "deepglobe": 518, "isic": 518, "lung": 518,
          "ade20k": 640}


def evaluated(name: str) -> bool:
    """Whether the dataset has a test protocol (ade20k is for training only)."""
    return bool(set(registry.load("dataset", name).splits) & {"val", "test"})


def trained(name: str) -> bool:
    """Whether the dataset has a train split (the cross-domain sets are for evaluation only)."""
    return "train" in registry.load("dataset", name).splits


EVALUATED = [n for n in DATASETS if evaluated(n)]
TRAINED = [n for n in DATASETS if trained(n)]


@pytest.fixture(scope="session")
def roots(tmp_path_factory) -> dict:
    """name -> (root, options) of a tiny dataset written once per session."""
    return {name: build(tmp_path_factory.mktemp(name)) for name, build in BUILDERS.items()}


def make(roots, name, split=None, fold=0, shot=None):
    """The tiny dataset, built for ``shot``-shot episodes when given (as eval and prepare do)."""
    if name not in roots:
        pytest.skip(f"no tiny-dataset fixture for third-party dataset plugin '{name}'")
    root, options = roots[name]
    cls = registry.load("dataset", name)
    if shot is not None:
        options = cls.options_for_shot(options, shot)
    return cls.create(root, fold, split, **options)


def test_builtins_are_registered():
    assert {"coco20i", "lvis92i", "fss1000", "pascal5i", "folder", "pascal_part", "paco_part",
            "deepglobe", "isic", "lung", "ade20k"} <= set(DATASETS)


@pytest.mark.parametrize("name", DATASETS)
def test_class_attributes(name):
    cls = registry.load("dataset", name)
    assert issubclass(cls, FewShotDataset) and cls.name == name
    assert cls.num_folds >= 1 and cls.eval_split in cls.splits
    if name in CANVAS:
        assert cls.default_canvas == CANVAS[name]


@pytest.mark.parametrize("name", DATASETS)
def test_classes_and_images(roots, name):
    dataset = make(roots, name)
    assert dataset.classes and dataset.classes == sorted(set(dataset.classes))
    for cid in dataset.classes:
        assert isinstance(dataset.class_name(cid), str) and dataset.class_name(cid)
        images = dataset.images(cid)
        assert images == sorted(images) or name in ("fss1000", "folder")  # natural order there
        assert images == dataset.images(cid)  # stable
    assert dataset.image_ids() == sorted({i for c in dataset.classes for i in dataset.images(c)})


@pytest.mark.parametrize("name", DATASETS)
def test_hooks_give_options_create_accepts(roots, name):
    dataset = make(roots, name)
    cls, (root, options) = type(dataset), roots[name]
    for shot in (1, 5):
        assert cls.create(root, 0, None, **cls.options_for_shot(options, shot)).classes
    assert set(cls.build_options) <= set(cls.option_names())


def test_fold_classes_without_images_stay_in_the_fold(roots):
    pascal = make(roots, "pascal5i")  # the fixture's split files list 3 of each fold's 5 classes
    assert pascal.classes == [0, 1, 2, 3, 4] and pascal.images(3) == []
    assert {e.class_id for e in pascal.episodes(1, count=30)} == {0, 1, 2}
    coco = make(roots, "coco20i")
    assert len(coco.classes) == 20 and len(make(roots, "coco20i", "train").classes) == 60


@pytest.mark.parametrize("name", DATASETS)
def test_images_and_masks_load(roots, name):
    dataset = make(roots, name)
    for cid in dataset.classes:
        for image_id in dataset.images(cid)[:2]:
            image = dataset.load_image(image_id)
            mask = dataset.load_mask(image_id, cid)
            assert image.mode == "RGB"
            assert mask.dtype == np.uint8 and mask.shape == (image.height, image.width)
            assert set(np.unique(mask)) <= {0, 1, 255} and (mask == 1).any()
            assert all(p.exists() for p in dataset.files(image_id))


@pytest.mark.parametrize("name", EVALUATED)
@pytest.mark.parametrize("shot", [1, 3])
def test_episodes_follow_the_rules(roots, name, shot):
    dataset = make(roots, name, shot=shot)
    episodes = dataset.episodes(shot, seed=0, count=40)
    assert [e.index for e in episodes] == list(range(40))
    for e in episodes:
        assert e.class_id in dataset.classes and e.target in dataset.images(e.class_id)
        assert len(e.references) == shot and e.target not in e.references
        assert set(e.references) <= set(dataset.images(e.class_id))
    assert episodes == make(roots, name, shot=shot).episodes(shot, seed=0, count=40)  # fresh
    assert episodes != dataset.episodes(shot, seed=1, count=40)


@pytest.mark.parametrize("name", EVALUATED)
def test_default_episode_count_follows_protocol(roots, name):
    dataset = make(roots, name)
    episodes = dataset.episodes(1)
    expected = dataset.episodes_per_fold or sum(len(dataset.images(c)) for c in dataset.classes)
    assert len(episodes) == expected


def _episodes_in_worker(args):
    name, root, options, lo, hi = args
    cls = registry.load("dataset", name)
    return cls.create(root, 0, None, **options).episodes(1, seed=7, count=30)[lo:hi]


@pytest.mark.parametrize("name", EVALUATED)
def test_episodes_independent_of_worker_count(roots, name):
    dataset = make(roots, name)
    whole = dataset.episodes(1, seed=7, count=30)
    root, options = roots[name]
    shards = [(name, root, options, lo, lo + 10) for lo in (0, 10, 20)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pieces = pool.map(_episodes_in_worker, shards)
    assert [e for piece in pieces for e in piece] == whole


@pytest.mark.parametrize("name", EVALUATED)
def test_episode_list_round_trip(roots, name, tmp_path):
    dataset = make(roots, name, shot=2)
    episodes = dataset.episodes(2, seed=3, count=12)
    path = write_episode_list(tmp_path / "e.json", dataset, episodes, shot=2, seed=3)
    listed = read_episode_list(path, dataset=dataset, shot=2)
    assert listed.episodes == tuple(episodes)
    assert (listed.dataset, listed.fold, listed.split, listed.shot, listed.seed) == (
        name, 0, dataset.split, 2, 3)
    assert listed.classes == tuple(dataset.classes)
    with pytest.raises(DatasetError, match="2-shot, not 5-shot"):
        read_episode_list(path, dataset=dataset, shot=5)
    if trained(name):
        other = make(roots, name, split="train")
        with pytest.raises(DatasetError, match="pass the matching dataset"):
            read_episode_list(path, dataset=other)


@pytest.mark.parametrize("name", DATASETS)
def test_options_are_json_ready_and_rebuild_the_dataset(roots, name):
    dataset = make(roots, name)
    options = dataset.options()
    assert json.loads(json.dumps(options)) == options
    assert "None" not in options.values()  # a missing option is JSON null
    cls, (root, _) = type(dataset), roots[name]
    assert cls.create(root, 0, None, **options).classes == dataset.classes


@pytest.mark.parametrize("name", DATASETS)
def test_paths_in_options_are_absolute_whatever_the_working_directory(roots, name, tmp_path,
                                                                      monkeypatch):
    absolute = make(roots, name).options()
    root, options = roots[name]
    monkeypatch.chdir(root.parent)
    relative = type(make(roots, name)).create(Path(root.name), 0, None, **options).options()
    assert relative == absolute
    paths = [v for v in absolute.values() if isinstance(v, str) and os.sep in v]
    assert all(Path(v).is_absolute() and Path(v) == Path(v).resolve() for v in paths), absolute


def test_a_relative_split_file_is_recorded_absolute_and_no_split_file_as_null(roots, tmp_path,
                                                                              monkeypatch):
    root, _ = roots["folder"]
    dataset = make(roots, "folder")
    path = write_episode_list(tmp_path / "e.json", dataset, dataset.episodes(1), 1, 0)
    assert json.loads(path.read_text())["options"] == {"splits": None}
    (tmp_path / "splits.json").write_text(json.dumps(
        {"folds": [{"train": ["bolt", "nut"], "test": ["washer"]}]}))
    monkeypatch.chdir(tmp_path)
    held_out = registry.load("dataset", "folder").create(root, 0, None, splits="splits.json")
    assert held_out.options() == {"splits": str((tmp_path / "splits.json").resolve())}


@pytest.mark.parametrize("name", TRAINED)
def test_training_episode(roots, name):
    dataset = make(roots, name, split="train")
    first = [dataset.training_episode(random.Random(5), 3) for _ in range(2)]
    assert first[0] == first[1]
    rng = random.Random(0)
    for _ in range(10):
        sample = dataset.training_episode(rng, 3)
        assert sample.class_id in dataset.classes and len(sample.targets) == 3
        assert sample.reference not in sample.targets
        assert {sample.reference, *sample.targets} <= set(dataset.images(sample.class_id))


@pytest.mark.parametrize("name", DATASETS)
def test_bad_input_is_one_line_error(roots, name, tmp_path):
    cls = registry.load("dataset", name)
    root, options = roots.get(name, (tmp_path, {}))
    with pytest.raises(MissingFileError, match=str(tmp_path / "nowhere")):
        cls.create(tmp_path / "nowhere", 0, None, **options)
    with pytest.raises(UserInputError, match="has no option"):
        cls.create(root, 0, None, **options, no_such_option=1)
    with pytest.raises(UserInputError, match="has no fold"):
        cls.create(root, 99, None, **options)
    with pytest.raises(UserInputError, match="has no split"):
        cls.create(root, 0, "holdout", **options)
    dataset = make(roots, name)
    with pytest.raises(UserInputError, match="shot"):
        dataset.episodes(0)


def test_episode_list_rejects_tampering(roots, tmp_path):
    import json

    dataset = make(roots, "folder")
    path = write_episode_list(tmp_path / "e.json", dataset, dataset.episodes(1), 1, 0)
    body = json.loads(path.read_text())
    body["episodes"][0]["supports"] = [body["episodes"][0]["query"]]
    path.write_text(json.dumps(body))
    with pytest.raises(DatasetError, match="uses its query as a support"):
        read_episode_list(path)
    path.write_text("{}")
    with pytest.raises(DatasetError, match="not a sansa episode list"):
        read_episode_list(path)
    with pytest.raises(MissingFileError):
        read_episode_list(tmp_path / "absent.json")
