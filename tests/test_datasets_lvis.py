"""LVIS-92i: fold membership (frozen vs the peers' rule), merged masks, Matcher's pkl layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sansa_cli.datasets.lvis92i import Lvis92i, fold_members, index_from_json
from sansa_cli.datasets.prepare import write_episode_lists
from sansa_cli.errors import UserInputError
from tests.cli_helpers import assert_one_line_error, run_sansa
from tests.datasets_fixtures import make_lvis92i, matcher_pkl, write_pickle


@pytest.fixture(scope="module")
def lvis_root(tmp_path_factory):
    root, _ = make_lvis92i(tmp_path_factory.mktemp("lvis"))
    return root


def test_frozen_membership_does_not_depend_on_the_shot(lvis_root):
    # Category 1 has 3 val images: eligible for the peers' 1-shot folds only.
    frozen = [Lvis92i(lvis_root, fold).classes for fold in range(10)]
    assert frozen == [[c] for c in range(2, 12)]
    assert Lvis92i(lvis_root, 0, membership="peers", shot=1).classes == [1]
    assert Lvis92i(lvis_root, 0, membership="peers", shot=5).classes == frozen[0]


def test_peers_rule_needs_the_shot_and_keeps_to_it(lvis_root):
    with pytest.raises(UserInputError, match="needs the shot"):
        Lvis92i(lvis_root, 0, membership="peers")
    with pytest.raises(UserInputError, match="unknown"):
        Lvis92i(lvis_root, 0, membership="sometimes")
    with pytest.raises(UserInputError, match="shot=5"):
        Lvis92i(lvis_root, 0, membership="peers", shot=1).episodes(5)


def test_round_robin_episodes_and_default_count(lvis_root):
    index = index_from_json(json.loads((lvis_root / "annotations/lvis_v1_val.json").read_text()))
    assert fold_members(index, 3, 5) == [5]
    episodes = Lvis92i(lvis_root, 0).episodes(1)
    assert len(episodes) == 2300 and {e.class_id for e in episodes} == {2}


def test_instances_merge_into_one_mask(lvis_root):
    dataset = Lvis92i(lvis_root, 1)  # fold 1 = class 3: polygons, two instances in image 100
    mask = dataset.load_mask("val2017/000000000100.jpg", 3)
    assert mask[4, 10] == 1 and mask[16, 2] == 1  # both instances
    assert set(np.unique(mask)) == {0, 1}
    rle_class = Lvis92i(lvis_root, 0)  # class 2 is stored as RLE
    assert rle_class.load_mask("val2017/000000000101.jpg", 2).sum() == 8 * 8  # x = (2 * 3 + 1) % 14


def test_training_split_excludes_the_folds_test_classes(lvis_root):
    train = Lvis92i(lvis_root, 0, "train")
    assert 2 not in train.classes and 1 in train.classes
    assert all(i.startswith("train2017/") for i in train.images(1))


def test_matcher_pkl_layout_gives_the_same_folds_and_masks(lvis_root, tmp_path):
    for split in ("train", "val"):
        body = json.loads((lvis_root / f"annotations/lvis_v1_{split}.json").read_text())
        write_pickle(tmp_path / f"lvis_{split}.pkl", matcher_pkl(body))
    from_pkl = Lvis92i(lvis_root, 1, annotations=tmp_path)
    from_json = Lvis92i(lvis_root, 1)
    assert from_pkl.classes == from_json.classes
    assert from_pkl.episodes(1, count=20) == from_json.episodes(1, count=20)
    image = "val2017/000000000100.jpg"
    assert (from_pkl.load_mask(image, 3) == from_json.load_mask(image, 3)).all()


def test_peers_episode_lists_use_the_shots_own_folds(lvis_root, tmp_path):
    rows = write_episode_lists(Lvis92i, lvis_root, {"membership": "peers"}, [0], [1, 5],
                               tmp_path, count=4)
    classes = [json.loads(path.read_text())["classes"] for *_, path in rows]
    assert classes == [[1], [2]]


def test_options_for_shot_gives_the_peers_rule_its_shot():
    assert Lvis92i.options_for_shot({"membership": "peers"}, 5) == {"membership": "peers",
                                                                    "shot": 5}
    frozen = {"membership": "frozen"}
    assert Lvis92i.options_for_shot(frozen, 5) == frozen


def test_cli_prepare_takes_the_annotations_folder_as_a_dataset_option(tmp_path, capsys,
                                                                       monkeypatch):
    root, _ = make_lvis92i(tmp_path / "coco2017")
    annotations = (root / "annotations").rename(tmp_path / "lvis")
    code, _, err = run_sansa(["prepare", "lvis92i", "--data-root", root], capsys, monkeypatch)
    assert_one_line_error(code, err, "--dataset-option annotations=DIR")
    code, out, err = run_sansa(["prepare", "lvis92i", "--data-root", root, "--dataset-option",
                                f"annotations={annotations}"], capsys, monkeypatch)
    assert code == 0, err
    assert "lvis92i at" in out and "0 missing, 0 broken" in out
