"""Pascal-Part and PACO-Part: folds, instance ids, the object crop, the lineage's draws, the
restricted unpickler, and `sansa prepare`."""

from __future__ import annotations

import json
import os
import pickle
import random

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from sansa_cli.datasets import read_episode_list, write_episode_list
from sansa_cli.datasets.paco_part import PacoPart
from sansa_cli.datasets.pascal_part import PascalPart
from sansa_cli.errors import DatasetError, MissingFileError, UserInputError
from tests.cli_helpers import assert_one_line_error, run_sansa
from tests import part_fixtures as pf

# pycocotools 2.0.x trips numpy 2's copy-keyword warning when the tests decode masks themselves
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def pascal_root(tmp_path_factory):
    return pf.make_pascal_part(tmp_path_factory.mktemp("Pascal-Part"))[0]


@pytest.fixture(scope="module")
def paco_root(tmp_path_factory):
    return pf.make_paco_part(tmp_path_factory.mktemp("PACO-Part"))[0]


def union(pieces, size) -> np.ndarray:
    """The union of box RLEs, decoded by pycocotools directly (not through sansa)."""
    w, h = size
    return np.max([mask_utils.decode(pf.box_rle(w, h, *p)) for p in pieces], axis=0)


def names(dataset) -> list[str]:
    return [dataset.class_name(c) for c in dataset.classes]


# -- Pascal-Part -------------------------------------------------------------------------------
def test_pascal_folds_are_supercategories_by_name(pascal_root, tmp_path):
    folds = [names(PascalPart(pascal_root, f)) for f in range(4)]
    assert folds == pf.PASCAL_FOLDS  # no bird+TAIL (no train), cat+LEGS (no val), aeroplane+TAIL
    shuffled = pf.make_pascal_part(tmp_path, order=["vehicles", "person", "animals", "indoor"])[0]
    assert [names(PascalPart(shuffled, f)) for f in range(4)] == folds
    assert [PascalPart(shuffled, f).classes for f in range(4)] == [[0, 1, 2], [3, 4], [5, 6],
                                                                   [7, 8]]
    train = PascalPart(pascal_root, 1, "train")
    assert train.classes == [0, 1, 2, 5, 6, 7, 8]  # the other supercategories
    assert PascalPart(pascal_root, None).classes == list(range(9))  # --fold all


def test_pascal_episode_count_joins_every_listed_pair(pascal_root):
    # animals val lists: bird FACE, WING, TAIL (excluded, still counted), cat FACE: 5 each
    assert len(PascalPart(pascal_root, 0).episodes(1)) == 20
    assert len(PascalPart(pascal_root, 3).episodes(1)) == 15  # aeroplane+TAIL counted too
    assert PascalPart(pascal_root, 1).episodes_per_fold == 10


def test_pascal_mask_is_the_instance_part_cropped_to_its_box(pascal_root):
    dataset = PascalPart(pascal_root, 0)
    face = dataset.classes[0]  # bird+FACE: instance 0 has two pieces, instance 1 another one
    ids = dataset.images(face)
    first = ids[0]
    voc, k = first.split("#")
    objects = json.loads((pascal_root / "VOCdevkit/VOC2010/Annotations_Part_json_merged_part_"
                          "classes" / f"{voc}.json").read_text())["object"]
    assert objects[int(k)]["name"] == "bird" and objects[int(k)]["bndbox"]["xmin"] == 2
    xmin, ymin, xmax, ymax = pf.BOX0
    expected = union(pf.part_pieces(0), pf.PASCAL_SIZE)[ymin:ymax, xmin:xmax]
    mask = dataset.load_mask(first, face)
    assert mask.shape == expected.shape and (mask == expected).all()
    assert dataset.load_image(first).size == (xmax - xmin, ymax - ymin)
    other = union([pf.OTHER_PIECE], pf.PASCAL_SIZE)[ymin:ymax, xmin:xmax]
    assert other[9, 15] == 1 and mask[9, 15] == 0  # the other instance's FACE is background
    whole = PascalPart(pascal_root, 0, box_crop=False)
    assert (whole.load_mask(first, face) == union(pf.part_pieces(0), pf.PASCAL_SIZE)).all()
    assert whole.load_image(first).size == pf.PASCAL_SIZE
    assert whole.options() == {"box_crop": False} and "box_crop=false" in whole.notes()[-1]
    second = f"{voc}#{int(k) + 1}"  # instance 1: its own FACE, in its own box
    x0, y0, x1, y1 = pf.BOX1
    assert second in ids
    assert (dataset.load_mask(second, face) ==
            union([pf.OTHER_PIECE], pf.PASCAL_SIZE)[y0:y1, x0:x1]).all()


def test_pascal_redraws_an_instance_without_the_part(pascal_root):
    dataset = PascalPart(pascal_root, 0)
    face, wing = dataset.classes[:2]
    assert all(dataset.load_mask(i, wing).any() for i in dataset.images(wing))
    episodes = dataset.episodes(2, count=60)
    used = {c: {i for e in episodes if e.class_id == c for i in (e.target, *e.references)}
            for c in (face, wing)}
    assert used[wing] <= set(dataset.images(wing))  # only instances 0: instance 1 has no WING
    assert len(dataset.images(face)) == 2 * len(dataset.images(wing))
    assert used[face] - set(dataset.images(wing))  # FACE draws instance 1 as well
    for e in episodes:
        images = [i.split("#")[0] for i in (e.target, *e.references)]
        assert len(set(images)) == 3  # supports: other images than the query and each other


def test_pascal_ids_are_checked(pascal_root):
    dataset = PascalPart(pascal_root, 0)
    for bad in ("2008_000000", "2008_000000#9", "2008_000000#x"):
        with pytest.raises(UserInputError, match="2008_000000"):
            dataset.load_image(bad)
    with pytest.raises(UserInputError, match="not in pascal_part"):
        dataset.images(7)


def test_the_lineages_parent_folder_is_accepted(pascal_root, paco_root):
    for root, folder, cls in ((pascal_root, "Pascal-Part", PascalPart),
                              (paco_root, "PACO-Part", PacoPart)):
        parent = root.parent / f"parent-of-{folder}"  # the lineage's data path
        parent.mkdir(exist_ok=True)
        if not (parent / folder).exists():
            (parent / folder).symlink_to(root, target_is_directory=True)
        assert cls(parent, 2).top == parent / folder
        assert cls(parent, 2).classes == cls(root, 2).classes


# -- PACO-Part ---------------------------------------------------------------------------------
def test_paco_folds_take_key_positions_per_shot(paco_root):
    one = [PacoPart(paco_root, f, shot=1).classes for f in range(4)]
    assert one == [[8, 501], [17, 300], [77, 230], [42, 120]]  # positions f, f+4; sorted ids
    three = [PacoPart(paco_root, f, shot=3).classes for f in range(4)]
    # 8 and 120 have 3 distinct val images (8's listed 6 times: de-duplicated)
    assert three == [[501], [17, 300], [77, 230], [42]]
    fixed = [PacoPart(paco_root, f, membership="fixed").classes for f in range(4)]
    assert fixed == [PacoPart(paco_root, f, shot=5).classes for f in range(4)]
    assert [PacoPart(paco_root, f).classes for f in range(4)] == one  # no shot: 1-shot folds
    assert PacoPart.options_for_shot({}, 5) == {"shot": 5}
    assert PacoPart.options_for_shot({"membership": "fixed"}, 5) == {"membership": "fixed"}
    assert PacoPart(paco_root, 0, membership="fixed").options() == {
        "box_crop": True, "membership": "fixed", "shot": None}
    assert any("1-shot folds" in n for n in PacoPart(paco_root, 0).notes())
    assert not any("1-shot" in n for n in PacoPart(paco_root, 0, shot=1).notes())
    with pytest.raises(UserInputError, match="shot=5"):
        PacoPart(paco_root, 0).episodes(5)
    with pytest.raises(UserInputError, match="drop shot=1"):
        PacoPart(paco_root, 0, membership="fixed", shot=1)
    with pytest.raises(UserInputError, match="membership 'sometimes'"):
        PacoPart(paco_root, 0, membership="sometimes")


def test_paco_train_holds_every_category_but_the_fold_classes(paco_root):
    assert PacoPart(paco_root, 0, "train").classes == [17, 42, 77, 120, 230, 300]
    assert PacoPart(paco_root, 0, "train", shot=3).classes == [8, 17, 42, 77, 120, 230, 300]
    assert PacoPart(paco_root, None, "train").classes == sorted(pf.PACO_CATEGORIES)
    assert PacoPart(paco_root, None, "val", shot=3).classes == [17, 42, 77, 230, 300, 501]


def test_paco_mask_is_the_parents_segments_cropped_to_its_box(paco_root):
    dataset = PacoPart(paco_root, 0)
    file = pf.paco_file("val", 1)
    parent_a, parent_b = f"{file}#1001", f"{file}#2001"
    assert {parent_a, parent_b} <= set(dataset.images(pf.TWO_PIECES))
    w, h = pf.PACO_SIZE
    x = 4 + pf.TWO_PIECES % 5
    own = np.max([mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(p, h, w)))
                  for p in (pf.box_polygon(x, 5, x + 8, 12), pf.box_polygon(4, 14, 10, 18))],
                 axis=0)
    bx, by, bw, bh = pf.PARENT_A
    rows, cols = slice(int(by), int(by + bh)), slice(int(bx), int(bx + bw))
    mask = dataset.load_mask(parent_a, pf.TWO_PIECES)
    assert (mask == own[rows, cols]).all() and mask.sum() > 0
    b_only = mask_utils.decode(pf.box_rle(w, h, 10, 8, 30, 20))
    assert b_only[16, 15] == 1 and own[16, 15] == 0 and mask[16 - 3, 15 - 2] == 0
    assert dataset.load_image(parent_a).size == (int(bw), int(bh))
    assert dataset.load_mask(parent_b, pf.TWO_PIECES).shape == (22, 20)
    with pytest.raises(UserInputError, match="no parent object"):
        dataset.load_image(f"{file}#4001")


def test_paco_empty_crops_redraw_the_episode(paco_root):
    cropped = PacoPart(paco_root, 2)  # fold 2 holds category 77, whose parents C are tiny
    tiny = {f"{pf.paco_file('val', i)}#{3000 + i}" for i in (1, 2, 3)}
    used = {i for e in cropped.episodes(1, count=300) for i in (e.target, *e.references)}
    assert not used & tiny and not tiny & set(cropped.images(pf.TINY_CATEGORY))
    whole = PacoPart(paco_root, 2, box_crop=False)
    assert tiny <= set(whole.images(pf.TINY_CATEGORY))
    assert {i for e in whole.episodes(1, count=300) for i in (e.target, *e.references)} & tiny
    with pytest.raises(DatasetError, match="crops nothing"):
        PacoPart(paco_root, 2).load_image(sorted(tiny)[0])
    for e in PacoPart(paco_root, 2, shot=3).episodes(3, count=50):
        files = [i.split("#")[0] for i in e.references]
        assert e.target.split("#")[0] not in files  # only the query's file is rejected


def test_paco_training_episode(paco_root):
    dataset = PacoPart(paco_root, 0, "train")
    assert dataset.training_episode(random.Random(3), 4) == \
        dataset.training_episode(random.Random(3), 4)
    rng = random.Random(0)
    for _ in range(30):
        sample = dataset.training_episode(rng, 4)
        assert sample.class_id in dataset.classes and len(sample.targets) == 4
        assert sample.reference.split("#")[0] not in {t.split("#")[0] for t in sample.targets}
        assert {sample.reference, *sample.targets} <= set(dataset.images(sample.class_id))


def test_paco_category_count(tmp_path):
    nine = pf.make_paco_part(tmp_path / "nine", categories=[*pf.PACO_CATEGORIES, 9])[0]
    with pytest.raises(DatasetError, match="9 part categories, not a multiple of the 4") as error:
        PacoPart(nine, 0)
    assert "\n" not in str(error.value)
    twelve = pf.make_paco_part(tmp_path / "twelve", categories=[*pf.PACO_CATEGORIES, 9, 10,
                                                                11, 12])[0]
    assert any("12 part categories, not the 448" in n for n in PacoPart(twelve, 0).notes())


class Payload:
    """Unpickling this runs ``os.mkdir(marker)``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_paco_pkl_is_read_as_data_only(tmp_path, paco_root):
    root = pf.make_paco_part(tmp_path / "evil")[0]
    marker = tmp_path / "ran"
    body = pickle.loads((paco_root / "paco/paco_part_val.pkl").read_bytes())
    body["img2anno"][101][0]["segmentation"] = Payload(marker)
    (root / "paco/paco_part_val.pkl").write_bytes(pickle.dumps(body))
    with pytest.raises(DatasetError, match="refers to the global .*mkdir"):
        PacoPart(root, 0)
    assert not marker.exists()


# -- both --------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [PascalPart, PacoPart])
def test_instance_ids_round_trip_through_episode_lists(cls, pascal_root, paco_root, tmp_path):
    root = pascal_root if cls is PascalPart else paco_root
    dataset = cls.create(root, 0, None, **cls.options_for_shot({}, 2))
    episodes = dataset.episodes(2, seed=4, count=10)
    assert all("#" in i for e in episodes for i in (e.target, *e.references))
    path = write_episode_list(tmp_path / "e.json", dataset, episodes, 2, 4)
    listed = read_episode_list(path, dataset=dataset, shot=2)
    assert listed.episodes == tuple(episodes) and listed.options == dataset.options()
    again = cls.create(root, 0, None, **listed.options)
    for e in listed.episodes[:3]:
        assert again.load_mask(e.target, e.class_id).shape[::-1] == \
            again.load_image(e.target).size


def test_prepare_writes_the_frozen_folds(pascal_root, paco_root, tmp_path, capsys, monkeypatch):
    code, out, err = run_sansa(["prepare", "pascal_part", "--data-root", pascal_root, "--out",
                                tmp_path / "p"], capsys, monkeypatch)
    assert code == 0, err
    body = json.loads((tmp_path / "p" / "pascal_part_folds.json").read_text())
    assert [[c["name"] for c in f["classes"]] for f in body["folds"]] == pf.PASCAL_FOLDS
    assert [f["supercategory"] for f in body["folds"]] == ["animals", "indoor", "person",
                                                           "vehicles"]
    assert "3/2/2/2 = 9" in out and "31/4/5/16 = 56" in out
    code, out, err = run_sansa(["prepare", "paco_part", "--data-root", paco_root, "--out",
                                tmp_path / "q"], capsys, monkeypatch)
    assert code == 0, err
    body = json.loads((tmp_path / "q" / "paco_part_folds.json").read_text())
    assert body["folds"]["lineage_1shot"] == [[8, 501], [17, 300], [77, 230], [42, 120]]
    assert body["folds"]["fixed"] == body["folds"]["lineage_5shot"]
    assert "2/2/2/2 = 8" in out and "not the 448" in out
    code, out, _ = run_sansa(["prepare", "paco_part", "--data-root", paco_root, "--out",
                              tmp_path / "q"], capsys, monkeypatch)
    assert code == 0 and "unchanged" in out
    code, out, err = run_sansa(["prepare", "paco_part", "--data-root", paco_root, "--episodes",
                                "--shots", "1", "--fold", "2", "--count", "6", "--out",
                                tmp_path / "e.json"], capsys, monkeypatch)
    assert code == 0, err
    listed = read_episode_list(tmp_path / "e.json")
    assert listed.options == {"box_crop": True, "membership": "lineage", "shot": 1}
    assert len(listed.episodes) == 6 and "#" in listed.episodes[0].target


@pytest.mark.parametrize("name,missing,source", [
    ("pascal_part", "VOCdevkit/VOC2010/all_obj_part_to_image.json", "pascal.zip"),
    ("paco_part", "paco/paco_part_train.pkl", "paco.zip")])
def test_a_missing_layout_is_one_line(name, missing, source, tmp_path, capsys, monkeypatch):
    code, _, err = run_sansa(["prepare", name, "--data-root", tmp_path], capsys, monkeypatch)
    assert_one_line_error(code, err, str(tmp_path / missing), source)
    cls = PascalPart if name == "pascal_part" else PacoPart
    with pytest.raises(MissingFileError, match=missing):
        cls(tmp_path, 0)
