"""LVIS-92i: fold membership (the lineage's per-shot rule vs fixed folds), merged masks, Matcher's
pkl layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sansa_cli.datasets.lvis92i import Lvis92i, fold_members, index_from_json
from sansa_cli.datasets.prepare import check_dataset, write_episode_lists
from sansa_cli.errors import UserInputError
from tests.cli_helpers import assert_one_line_error, run_sansa
from tests.datasets_fixtures import make_lvis92i, matcher_pkl, write_pickle

#: val images per category of the varied fixture (the others are in all 8 images)
VAL_COUNTS = {1: 1, 2: 2, 3: 5, 4: 6}


@pytest.fixture(scope="module")
def lvis_root(tmp_path_factory):
    root, _ = make_lvis92i(tmp_path_factory.mktemp("lvis"))
    return root


@pytest.fixture(scope="module")
def varied_root(tmp_path_factory):
    """25 categories: 1 to 4 with 1, 2, 5 and 6 val images, 5 to 25 with 8 (2 per fold)."""
    root, _ = make_lvis92i(tmp_path_factory.mktemp("lvis_varied"), 25, VAL_COUNTS)
    return root


def lineage_folds(shot: int, counts: dict[int, int], num_classes: int) -> list[list[int]]:
    """The lineage's rule written out: categories with more than ``shot`` images, in id order,
    dealt to 10 folds."""
    eligible = [c for c in range(1, num_classes + 1) if counts.get(c, 8) > shot]
    return [eligible[fold::10][:len(eligible) // 10] for fold in range(10)]


def test_the_default_is_the_lineages_rule_per_shot(varied_root):
    for shot in (1, 2, 5):
        folds = [Lvis92i(varied_root, fold, shot=shot).classes for fold in range(10)]
        assert folds == lineage_folds(shot, VAL_COUNTS, 25), shot
    one = [Lvis92i(varied_root, fold, shot=1).classes for fold in range(10)]
    five = [Lvis92i(varied_root, fold, shot=5).classes for fold in range(10)]
    # 1-shot: categories 2.. are eligible; 5-shot: 4.. (2 and 3 have too few images)
    assert one[0] == [2, 12] and one[9] == [11, 21]
    assert five[0] == [4, 14] and five[9] == [13, 23]
    assert all(a != b for a, b in zip(one, five))
    assert [Lvis92i(varied_root, fold).classes for fold in range(10)] == one  # no shot: 1-shot


def test_fixed_folds_do_not_depend_on_the_shot(lvis_root, varied_root):
    five = [Lvis92i(varied_root, fold, shot=5).classes for fold in range(10)]
    for spelling in ("fixed", "frozen"):
        assert [Lvis92i(varied_root, fold, membership=spelling).classes
                for fold in range(10)] == five
    # category 1 has 3 val images: in the 1-shot folds only
    assert [Lvis92i(lvis_root, fold).classes for fold in range(10)] == [[c] for c in range(1, 11)]
    assert [Lvis92i(lvis_root, fold, membership="fixed").classes for fold in range(10)] == \
        [[c] for c in range(2, 12)]


@pytest.mark.parametrize("spelling,rule", [("lineage", "lineage"), ("peers", "lineage"),
                                           ("fixed", "fixed"), ("frozen", "fixed")])
def test_membership_spellings(lvis_root, spelling, rule):
    dataset = Lvis92i(lvis_root, 0, membership=spelling)
    assert dataset.options()["membership"] == rule
    assert dataset.options()["shot"] == (1 if rule == "lineage" else None)
    given = Lvis92i.options_for_shot({"membership": spelling}, 5)
    assert given == ({"membership": spelling, "shot": 5} if rule == "lineage"
                     else {"membership": spelling})
    assert Lvis92i.create(lvis_root, 0, None, **given).classes == [2]  # 5-shot folds either way


def test_options_for_shot_gives_the_default_rule_its_shot():
    assert Lvis92i.options_for_shot({}, 5) == {"shot": 5}
    assert Lvis92i.options_for_shot({"shot": 5}, 1) == {"shot": 1}  # the shot asked for wins
    odd = {"membership": ["fixed"]}
    assert Lvis92i.options_for_shot(odd, 5) == odd  # left to the constructor to refuse


@pytest.mark.parametrize("options,names", [
    ({"membership": "sometimes"}, "membership 'sometimes' is unknown"),
    ({"membership": ["fixed"]}, "membership ['fixed'] is unknown"),
    ({"membership": "fixed", "shot": 1}, "drop shot=1"),
    ({"membership": "frozen", "shot": 5}, "membership=frozen"),
    ({"shot": 0}, "shot=0"),
    ({"shot": "one"}, "shot='one'"),
    ({"shot": True}, "shot=True"),
])
def test_bad_membership_options_are_one_line_errors(lvis_root, options, names):
    with pytest.raises(UserInputError) as error:
        Lvis92i.create(lvis_root, 0, None, **options)
    assert names in str(error.value) and "\n" not in str(error.value)


def test_an_instance_serves_its_own_shot_only(lvis_root):
    with pytest.raises(UserInputError, match="shot=5"):
        Lvis92i(lvis_root, 0).episodes(5)
    with pytest.raises(UserInputError, match="shot=1"):
        Lvis92i(lvis_root, 0, shot=5).episodes(1)
    fixed = Lvis92i(lvis_root, 0, membership="fixed")
    assert len(fixed.episodes(1, count=3)) == len(fixed.episodes(5, count=3)) == 3


def test_episode_lists_record_membership_and_shot(lvis_root, tmp_path):
    rows = write_episode_lists(Lvis92i, lvis_root, {}, [0], [1, 5], tmp_path / "lineage",
                               count=4)
    bodies = [json.loads(path.read_text()) for *_, path in rows]
    assert [b["classes"] for b in bodies] == [[1], [2]]
    assert [(b["options"]["membership"], b["options"]["shot"], b["shot"]) for b in bodies] == \
        [("lineage", 1, 1), ("lineage", 5, 5)]
    rows = write_episode_lists(Lvis92i, lvis_root, {"membership": "frozen"}, [0], [1, 5],
                               tmp_path / "fixed", count=4)
    bodies = [json.loads(path.read_text()) for *_, path in rows]
    assert [b["classes"] for b in bodies] == [[2], [2]]
    assert all(b["options"]["membership"] == "fixed" and b["options"]["shot"] is None
               for b in bodies)  # JSON null, not "None"


def test_paths_in_options_are_absolute_whatever_the_working_directory(lvis_root, tmp_path,
                                                                       monkeypatch):
    monkeypatch.chdir(lvis_root.parent)
    relative = Lvis92i(lvis_root.name, 0, annotations=f"{lvis_root.name}/annotations",
                       image_root=lvis_root.name).options()
    monkeypatch.chdir(tmp_path)
    assert relative == Lvis92i(lvis_root, 0).options()
    assert relative["annotations"] == str((lvis_root / "annotations").resolve())
    assert relative["image_root"] == str(lvis_root.resolve())


def test_without_a_shot_the_summary_says_which_folds(lvis_root, capsys, monkeypatch):
    assert Lvis92i(lvis_root, 0, shot=1).notes() == []
    assert Lvis92i(lvis_root, 0, membership="fixed").notes() == []
    report = check_dataset(Lvis92i, lvis_root, {}, folds=[0, 1])
    assert len(report.warnings) == 1  # one note, not one per fold and split
    note = report.warnings[0]
    assert "lineage's 1-shot folds" in note and "1 class with 2 to 5 val images" in note
    assert "membership=fixed" in note
    code, out, err = run_sansa(["prepare", "lvis92i", "--data-root", lvis_root, "--fold", "0"],
                               capsys, monkeypatch)
    assert code == 0, err
    assert "lvis92i: no shot given" in " ".join(out.split())


def test_round_robin_episodes_and_default_count(lvis_root):
    index = index_from_json(json.loads((lvis_root / "annotations/lvis_v1_val.json").read_text()))
    assert fold_members(index, 3, 5) == [5]
    episodes = Lvis92i(lvis_root, 0).episodes(1)
    assert len(episodes) == 2300 and {e.class_id for e in episodes} == {1}


def test_instances_merge_into_one_mask(lvis_root):
    dataset = Lvis92i(lvis_root, 2)  # fold 2 = class 3: polygons, two instances in image 100
    assert dataset.classes == [3]
    mask = dataset.load_mask("val2017/000000000100.jpg", 3)
    assert mask[4, 10] == 1 and mask[16, 2] == 1  # both instances
    assert set(np.unique(mask)) == {0, 1}
    rle_class = Lvis92i(lvis_root, 1)  # class 2 is stored as RLE
    assert rle_class.load_mask("val2017/000000000101.jpg", 2).sum() == 8 * 8  # x = (2 * 3 + 1) % 14


def test_training_split_excludes_the_folds_test_classes(lvis_root):
    train = Lvis92i(lvis_root, 0, "train")  # fold 0 tests class 1 (1-shot folds)
    assert 1 not in train.classes and 2 in train.classes
    fixed = Lvis92i(lvis_root, 0, "train", membership="fixed")  # fold 0 tests class 2
    assert 2 not in fixed.classes and 1 in fixed.classes
    assert all(i.startswith("train2017/") for i in fixed.images(1))


def test_matcher_pkl_layout_gives_the_same_folds_and_masks(lvis_root, tmp_path):
    for split in ("train", "val"):
        body = json.loads((lvis_root / f"annotations/lvis_v1_{split}.json").read_text())
        write_pickle(tmp_path / f"lvis_{split}.pkl", matcher_pkl(body))
    from_pkl = Lvis92i(lvis_root, 2, annotations=tmp_path)
    from_json = Lvis92i(lvis_root, 2)
    assert from_pkl.classes == from_json.classes
    assert from_pkl.episodes(1, count=20) == from_json.episodes(1, count=20)
    image = "val2017/000000000100.jpg"
    assert (from_pkl.load_mask(image, 3) == from_json.load_mask(image, 3)).all()


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
