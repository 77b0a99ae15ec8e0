"""The cross-domain evaluation sets (DeepGlobe, ISIC 2018, Lung) and ADE20K (training only) on
tiny copies of their real on-disk layouts."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sansa_cli import registry
from sansa_cli.errors import DatasetError, MissingFileError, UserInputError
from tests.cli_helpers import assert_one_line_error, run_sansa
from tests.crossdomain_fixtures import (
    ADE_CLASSES,
    MONTGOMERY,
    SHENZHEN,
    deepglobe_patnet,
    deepglobe_sansa,
    isic_folders,
    isic_official,
    make_ade20k,
    make_lung,
)

CROSS_DOMAIN = ("deepglobe", "isic", "lung")


def create(name: str, root: Path, **options):
    return registry.load("dataset", name).create(root, 0, None, **options)


def one_line(exc_info, *fragments: str) -> str:
    message = str(exc_info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    made = {"patnet": deepglobe_patnet(tmp_path_factory.mktemp("dg_patnet")),
            "sansa": deepglobe_sansa(tmp_path_factory.mktemp("dg_sansa")),
            "isic_csv": isic_official(tmp_path_factory.mktemp("isic_csv")),
            "isic_folders": isic_folders(tmp_path_factory.mktemp("isic_folders")),
            "lung": make_lung(tmp_path_factory.mktemp("lung"))[0]}
    made.update(deepglobe=made["sansa"], isic=made["isic_csv"])
    return made


# -- DeepGlobe ------------------------------------------------------------------------------------
def test_deepglobe_reads_both_layouts_alike(roots):
    patnet, sansa = create("deepglobe", roots["patnet"]), create("deepglobe", roots["sansa"])
    assert patnet.options() == {"layout": "patnet"} and sansa.options() == {"layout": "sansa"}
    assert "layout=patnet" in patnet.notes()[0] and "layout=sansa" in sansa.notes()[0]
    assert [patnet.class_name(c) for c in patnet.classes] == [
        "agriculture", "urban", "rangeland", "forest", "water", "barren"]
    assert all(patnet.images(c) == sansa.images(c) and len(patnet.images(c)) == 4
               for c in patnet.classes)
    assert patnet.images(1)[0].endswith(".jpg") and "_sat_" in patnet.images(1)[0]
    assert patnet.episodes(2, seed=3) == sansa.episodes(2, seed=3)  # lists replay on either
    tile = patnet.images(1)[0]
    assert (patnet.load_mask(tile, 2) == 0).all()  # a tile without the class: all background


def test_deepglobe_layout_problems_are_one_line(roots, tmp_path):
    both = tmp_path / "both" / "Deepglobe"
    shutil.copytree(roots["patnet"], both)
    shutil.copytree(roots["sansa"], both, dirs_exist_ok=True)
    with pytest.raises(DatasetError) as exc:
        create("deepglobe", both)
    one_line(exc, "both layouts", "layout=patnet", "layout=sansa")
    assert create("deepglobe", both, layout="patnet").options() == {"layout": "patnet"}
    (tmp_path / "empty" / "Deepglobe").mkdir(parents=True)
    with pytest.raises(MissingFileError) as exc:
        create("deepglobe", tmp_path / "empty" / "Deepglobe")
    one_line(exc, "neither layout", "1/test/origin", "filter_mask", "PATNet")
    with pytest.raises(MissingFileError) as exc:
        create("deepglobe", tmp_path / "empty")  # the parent of the dataset folder
    one_line(exc, f"pass {tmp_path / 'empty' / 'Deepglobe'}")
    half = tmp_path / "half"
    shutil.copytree(roots["sansa"] / "image", half / "image")
    with pytest.raises(MissingFileError) as exc:
        create("deepglobe", half)
    one_line(exc, str(half / "filter_mask"))
    with pytest.raises(UserInputError, match="layout='tiles' is unknown"):
        create("deepglobe", half, layout="tiles")
    (roots["sansa"] / "filter_mask" / "1" / "stray.png").write_bytes(b"")
    try:
        with pytest.raises(DatasetError, match="stray.png is not named <id>_mask_<ij>.png"):
            create("deepglobe", roots["sansa"])
    finally:
        (roots["sansa"] / "filter_mask" / "1" / "stray.png").unlink()


# -- the lineage's protocol -----------------------------------------------------------------------
@pytest.mark.parametrize("name", CROSS_DOMAIN)
def test_round_robin_classes_and_600_episodes(roots, name):
    dataset = create(name, roots[name])
    assert (dataset.num_folds, dataset.splits, dataset.default_canvas) == (1, ("test",), 518)
    episodes = dataset.episodes(3)
    assert len(episodes) == 600
    n = len(dataset.classes)
    assert [e.class_id for e in episodes] == [dataset.classes[i % n] for i in range(600)]
    for e in episodes:
        assert e.target not in e.references and set(e.references) <= set(dataset.images(e.class_id))
    # supports reject only the query, so they repeat within an episode now and then
    assert any(len(set(e.references)) < 3 for e in episodes)


@pytest.mark.parametrize("name", CROSS_DOMAIN)
def test_masks_are_binarised_at_128(roots, name):
    dataset = create(name, roots[name])
    cid = dataset.classes[0]
    image = dataset.images(cid)[0]
    raw = np.asarray(Image.open(dataset.mask_file(image, cid)).convert("L"))
    assert {127, 128} <= set(np.unique(raw).tolist())
    assert np.array_equal(dataset.load_mask(image, cid), (raw >= 128).astype(np.uint8))


# -- ISIC 2018 ------------------------------------------------------------------------------------
def test_isic_csv_and_class_folders_give_the_same_classes(roots):
    by_csv, by_folders = create("isic", roots["isic_csv"]), create("isic", roots["isic_folders"])
    assert [by_csv.class_name(c) for c in by_csv.classes] == [
        "nevus", "melanoma", "seborrheic keratosis"]
    assert all(by_csv.images(c) == by_folders.images(c) for c in by_csv.classes)
    assert by_csv.images(1) == ["ISIC_0000000.jpg", "ISIC_0000003.jpg", "ISIC_0000006.jpg",
                                "ISIC_0000007.jpg"]
    assert by_csv.options() == {"layout": "csv", "csv": str(roots["isic_csv"] / "class_id.csv"),
                                "mapping": "nevus,melanoma,seborrheic_keratosis"}
    assert by_folders.options()["csv"] is None and by_folders.options()["layout"] == "folders"
    assert "2 melanoma" in by_csv.notes()[0]


def test_isic_mapping_options_and_csv_problems(roots, tmp_path):
    dr_adapter = {"seborrheic_keratosis": 1, "nevus": 2, "melanoma": 3}
    root = isic_folders(tmp_path / "dr", folders=dr_adapter)
    shutil.copy(roots["isic_csv"] / "class_id.csv", root / "class_id.csv")
    with pytest.raises(DatasetError) as exc:
        create("isic", root)
    one_line(exc, "mapping=seborrheic_keratosis,nevus,melanoma")
    remapped = create("isic", root, mapping="seborrheic_keratosis,nevus,melanoma")
    assert remapped.class_name(1) == "seborrheic keratosis"
    assert remapped.images(2) == create("isic", roots["isic_csv"]).images(1)
    with pytest.raises(UserInputError, match="must name each of"):
        create("isic", root, mapping="nevus,melanoma")
    moved = tmp_path / "elsewhere.csv"
    moved.write_bytes(b"ID,Class\nISIC_0000000,nevus\nISIC_0000001,basal cell\n")
    with pytest.raises(DatasetError) as exc:
        create("isic", roots["isic_csv"], csv=moved)
    one_line(exc, "line 3", "basal cell")
    moved.write_bytes(b"ID,Class\r\nISIC_0000000,nevus\r\nISIC_0000003,Nevus\r\n")
    small = create("isic", roots["isic_csv"], csv=moved)
    assert small.images(1) == ["ISIC_0000000.jpg", "ISIC_0000003.jpg"] and small.images(2) == []
    assert small.options()["csv"] == str(moved.resolve())
    with pytest.raises(MissingFileError) as exc:
        create("isic", roots["isic_csv"], csv=tmp_path / "none.csv")
    one_line(exc, "PATNet's data/isic/class_id.csv")


def test_isic_refuses_images_resized_apart_from_their_masks(roots, tmp_path):
    resized = isic_folders(tmp_path / "resized", image_size=(32, 32))
    with pytest.raises(DatasetError) as exc:
        create("isic", resized)
    one_line(exc, "ISIC_0000000.jpg is 32x32", "re-split")
    dataset = create("isic", roots["isic_csv"])
    later = dataset.image_file(dataset.images(1)[1])
    original = later.read_bytes()
    try:
        Image.new("RGB", (32, 32)).save(later)
        with pytest.raises(DatasetError, match=f"{later.name} is 32x32"):
            dataset.load_mask(later.name, 1)
    finally:
        later.write_bytes(original)


# -- Lung -----------------------------------------------------------------------------------------
def test_lung_pool_with_and_without_montgomery(roots, tmp_path):
    full = create("lung", roots["lung"])
    names = [f"{s}.png" for s in SHENZHEN + MONTGOMERY]
    assert full.classes == [1] and full.images(1) == sorted(names)  # unmasked images left out
    assert full.options() == {"montgomery": True} and not full.notes()
    assert full.mask_file("CHNCXR_0001_0.png", 1).name == "CHNCXR_0001_0_mask.png"
    assert full.mask_file("MCUCXR_0001_0.png", 1).name == "MCUCXR_0001_0.png"
    assert full.load_image("MCUCXR_0001_0.png").mode == "RGB"  # gray X-rays
    shenzhen = create("lung", roots["lung"], montgomery="false")  # as typed on the command line
    assert shenzhen.images(1) == [f"{s}.png" for s in SHENZHEN]
    assert shenzhen.options() == {"montgomery": False} and "leaves out the 2" in shenzhen.notes()[0]
    with pytest.raises(UserInputError, match="montgomery='maybe' is not true or false"):
        create("lung", roots["lung"], montgomery="maybe")
    (tmp_path / "LungSegmentation" / "CXR_png").mkdir(parents=True)
    with pytest.raises(MissingFileError) as exc:
        create("lung", tmp_path / "LungSegmentation")
    one_line(exc, str(tmp_path / "LungSegmentation" / "masks"), "Chest X-ray Masks and Labels")


# -- ADE20K ---------------------------------------------------------------------------------------
@pytest.fixture()
def ade(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SANSA_CACHE", str(tmp_path / "cache"))
    return make_ade20k(tmp_path / "data")[0]


def test_ade20k_index_names_and_no_evaluation(ade, tmp_path):
    dataset = create("ade20k", ade)
    assert dataset.classes == list(range(1, 151)) and dataset.default_canvas == 640
    assert dataset.images(1) == ["ADE_train_00000001.jpg", "ADE_train_00000002.jpg",
                                 "ADE_train_00000004.jpg"]
    assert len(dataset.image_ids()) == 6  # the image of "other" only is left out
    assert dataset.class_name(1) == "wall" and not dataset.notes()
    with pytest.raises(UserInputError) as exc:
        dataset.episodes(1)
    one_line(exc, "training set", "no test protocol")
    with pytest.raises(UserInputError, match="has no split"):
        registry.load("dataset", "ade20k").create(ade, 0, "test")
    (ade / "utils" / "ade20k_classes.json").unlink()
    unnamed = create("ade20k", ade)
    assert unnamed.class_name(1) == "class 1" and "ade20k_classes.json" in unnamed.notes()[0]
    (ade / "utils" / "ade20k_classes.json").write_text(json.dumps(["wall"]))
    with pytest.raises(DatasetError, match="not a JSON list of 150 names"):
        create("ade20k", ade)


def test_ade20k_training_episodes(ade):
    dataset = create("ade20k", ade)
    assert dataset.training_episode(random.Random(4), 3) == \
        create("ade20k", ade).training_episode(random.Random(4), 3)
    rng, drawn = random.Random(0), set()
    for _ in range(40):
        episode = dataset.training_episode(rng, 2)
        drawn.add(episode.class_id)
        assert episode.reference not in episode.targets and len(episode.targets) == 2
        for image in (episode.reference, *episode.targets):
            mask = dataset.load_mask(image, episode.class_id)
            label = np.asarray(Image.open(dataset.annotation(image)))
            assert mask.any() and np.array_equal(mask, (label == episode.class_id))
            assert not mask[label == 0].any()  # 0 = other is plain background
    assert drawn == {1, 2, 3, 150}  # class 7 is in one image only: never drawn
    assert {c for classes in ADE_CLASSES for c in classes} - drawn == {7}


def test_ade20k_index_is_cached_outside_the_data_folder(ade, tmp_path, monkeypatch):
    import sansa_cli.datasets.ade20k as module

    before = sorted(p for p in ade.rglob("*"))
    first = create("ade20k", ade)
    assert sorted(p for p in ade.rglob("*")) == before  # nothing written into the data
    assert len(list((tmp_path / "cache" / "ade20k").glob("*.json"))) == 1
    read = []
    original = module._classes_in
    monkeypatch.setattr(module, "_classes_in", lambda path: read.append(path.name)
                        or original(path))
    assert create("ade20k", ade).images(3) == first.images(3) and read == []
    changed = ade / "annotations" / "training" / "ADE_train_00000005.png"
    Image.fromarray(np.full((16, 20), 3, dtype=np.uint8)).save(changed)
    assert "ADE_train_00000005.jpg" in create("ade20k", ade).images(3)
    assert read == ["ADE_train_00000005.png"]  # only the changed annotation is read again
    Image.fromarray(np.full((16, 20), 200, dtype=np.uint8)).save(changed)
    with pytest.raises(DatasetError) as exc:
        create("ade20k", ade)
    one_line(exc, "ADE_train_00000005.png holds value 200")


# -- sansa prepare --------------------------------------------------------------------------------
def test_prepare_checks_and_freezes_episode_lists(roots, tmp_path, capsys, monkeypatch):
    code, out, err = run_sansa(["prepare", "deepglobe", "--data-root", roots["patnet"]],
                               capsys, monkeypatch)
    assert code == 0, err
    assert "0 missing, 0 broken" in out and "layout=patnet" in " ".join(out.split())
    target = tmp_path / "dg.json"
    code, out, err = run_sansa(["prepare", "deepglobe", "--data-root", roots["patnet"],
                                "--episodes", "--shots", "1", "--out", target],
                               capsys, monkeypatch)
    assert code == 0, err
    body = json.loads(target.read_text())
    assert len(body["episodes"]) == 600 and body["options"] == {"layout": "patnet"}
    assert body["class_names"]["6"] == "barren" and body["split"] == "test"
    code, out, err = run_sansa(["prepare", "lung", "--data-root", tmp_path], capsys, monkeypatch)
    assert_one_line_error(code, err, str(tmp_path / "CXR_png"), "Kaggle")
