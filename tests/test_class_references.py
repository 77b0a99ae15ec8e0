"""Reference files of several classes: a YAML class list and a COCO instances file."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import yaml
from PIL import Image, ImageFile
from pycocotools import mask as mask_utils

from sansa_cli.core.class_references import plan_class_references, read_class_references
from sansa_cli.core.images import load_image
from sansa_cli.core.prompts import Box, Points, Scribble
from sansa_cli.errors import MissingFileError, UserInputError
from tests.datasets_fixtures import box_polygon, box_rle, picture

W, H = 64, 48  # every test image


def _mask_png(path, box, size=(W, H)) -> np.ndarray:
    """A mask file holding ``box`` (x0, y0, x1, y1); returns the boolean mask."""
    m = np.zeros(size[::-1], dtype=bool)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = True
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(m.astype(np.uint8) * 255).save(path)
    return m


def _one_line(exc: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(exc.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


# -- class list --------------------------------------------------------------------------------
@pytest.fixture
def class_list(tmp_path):
    """project/labels.yaml over project/refs/: cat by mask and box, dog by points and scribble."""
    project = tmp_path / "project"
    for k, name in enumerate("abcd"):
        picture(project / "refs" / f"{name}.jpg", (W, H), seed=k)
    masks = {"a_cat": _mask_png(project / "refs" / "a_cat.png", (10, 8, 30, 20)),
             "d_strokes": _mask_png(project / "refs" / "d_strokes.png", (20, 20, 22, 30))}
    body = {"classes": [
        {"name": "cat", "references": [
            {"image": "refs/a.jpg", "mask": "refs/a_cat.png"},
            {"image": "refs/b.jpg", "box": [4, 3, 40, 30]}]},
        {"name": "dog", "references": [
            {"image": "refs/c.jpg", "points": [[12, 8]], "negative": [[5, 5]]},
            {"image": "refs/d.jpg", "scribble": "refs/d_strokes.png"}]}]}
    return project, body, masks


def _write_yaml(project, body, name="labels.yaml"):
    path = project / name
    path.write_text(body if isinstance(body, str) else yaml.safe_dump(body, sort_keys=False))
    return path


def test_class_list_round_trips_every_marking(class_list, tmp_path, monkeypatch):
    project, body, masks = class_list
    path = _write_yaml(project, body)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # relative paths start at the YAML's folder
    loaded = read_class_references(path)
    assert loaded.labelled_images == frozenset() and loaded.warnings == ()
    cat, dog = loaded.classes
    assert (cat.name, dog.name, cat.category_id) == ("cat", "dog", None)
    refs = project / "refs"
    for ref, name in zip([*cat.references, *dog.references], "abcd"):
        assert np.array_equal(np.asarray(ref.image), np.asarray(load_image(refs / f"{name}.jpg")))
    assert np.array_equal(cat.references[0].mask, masks["a_cat"])
    assert cat.references[0].prompt is None
    assert cat.references[1].prompt == Box(4, 3, 40, 30)
    assert dog.references[0].prompt == Points(((12.0, 8.0),), ((5.0, 5.0),))
    assert dog.references[1].prompt == Scribble(refs / "d_strokes.png")
    assert cat.sources == [f"{refs / 'a.jpg'} ({refs / 'a_cat.png'})",
                           f"{refs / 'b.jpg'} (box:4,3,40,30)"]
    assert dog.sources[0] == f"{refs / 'c.jpg'} (points:12,8|neg:5,5)"


def test_class_list_checks_decode_nothing(class_list, monkeypatch):
    """Every check reads headers only; pixels are decoded by load()."""
    project, body, _ = class_list
    path = _write_yaml(project, body)

    def refuse(self):
        raise AssertionError("decoded while checking")

    with monkeypatch.context() as patch:
        patch.setattr(ImageFile.ImageFile, "load", refuse)
        plan = plan_class_references(path)
    assert [len(c.references) for c in plan.load().classes] == [2, 2]


def test_class_list_absolute_paths_json_form_and_max_references(class_list):
    project, body, _ = class_list
    for ref in body["classes"][0]["references"]:
        ref["image"] = str(project / ref["image"])
    path = _write_yaml(project, json.dumps(body), "labels.json")  # a class list as JSON
    loaded = read_class_references(path, max_references=1)
    assert [len(c.references) for c in loaded.classes] == [1, 1]
    assert loaded.classes[0].references[0].mask is not None  # the first reference kept


def _turned(path, array):
    """``array`` saved with EXIF orientation 6: displayed turned by 90 degrees."""
    img = Image.fromarray(array)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(path, exif=exif)


def test_exif_turned_files_are_checked_upright(tmp_path):
    _turned(tmp_path / "turned.jpg", np.zeros((20, 40, 3), np.uint8))  # shown 20 wide, 40 high
    _mask_png(tmp_path / "m.png", (2, 2, 10, 10), size=(20, 40))
    _turned(tmp_path / "turned_m.png", np.full((20, 40), 255, np.uint8))
    body = {"classes": [{"name": "x", "references": [
        {"image": "turned.jpg", "mask": "m.png"},
        {"image": "turned.jpg", "mask": "turned_m.png"}]}]}
    refs = read_class_references(_write_yaml(tmp_path, body)).classes[0].references
    assert [r.image.size for r in refs] == [(20, 40)] * 2 and refs[1].mask.shape == (40, 20)


def _set(*keys_and_value):
    """A change to the class list: the value at a path of keys (None deletes it)."""
    *keys, value = keys_and_value

    def change(body):
        node = body
        for key in keys[:-1]:
            node = node[key]
        if value is None:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
        return body
    return change


DOG2 = ("classes", 1, "references", 1)  # class 'dog', reference 2
BAD_CLASS_LISTS = {
    "unknown key": (_set(*DOG2, "colour", "red"), "class 'dog', reference 2: unknown key "
                    "'colour'"),
    "missing image": (_set(*DOG2, "image", "refs/nope.jpg"), "class 'dog', reference 2: image"),
    "missing scribble": (_set(*DOG2, "scribble", "refs/nope.png"), "reference 2: scribble"),
    "missing mask": (_set("classes", 0, "references", 0, "mask", "nope.png"),
                     "class 'cat', reference 1: mask"),
    "two markings": (_set(*DOG2, "box", [1, 1, 9, 9]), "class 'dog', reference 2 has markings "
                     "box and scribble"),
    "no marking": (_set(*DOG2, "scribble", None), "class 'dog', reference 2 has no marking"),
    "no image": (_set(*DOG2, "image", None), "class 'dog', reference 2 has no image"),
    "not a mapping": (_set(*DOG2, "refs/d.jpg"), "class 'dog', reference 2 is not a mapping"),
    "box of 3": (_set("classes", 0, "references", 1, "box", [1, 2, 3]),
                 "class 'cat', reference 2: box [1, 2, 3] is not 4 numbers"),
    "box of text": (_set("classes", 0, "references", 1, "box", "1,2,3,4"),
                    "class 'cat', reference 2: box '1,2,3,4' is not 4 numbers"),
    "box outside": (_set("classes", 0, "references", 1, "box", [4, 3, 400, 30]),
                    "class 'cat', reference 2: box corner (400, 30) is outside"),
    "bad points": (_set("classes", 1, "references", 0, "points", [12, 8]),
                   "class 'dog', reference 1: points [12, 8] is not a list of [x, y] points"),
    "negative without points": (_set("classes", 0, "references", 1, "negative", [[1, 1]]),
                                "class 'cat', reference 2: negative clicks go with points"),
    "mask of another size": (_set("classes", 0, "references", 0, "mask", "refs/small.png"),
                             "class 'cat', reference 1: mask", "is 10x10 but image"),
    "empty class": (_set("classes", 1, "references", []), "class 'dog' has no references"),
    "no references": (_set("classes", 1, "references", None), "class 'dog' has no references"),
    "unknown class key": (_set("classes", 1, "colour", "red"), "class 'dog': unknown key"),
    "duplicate names": (_set("classes", 1, "name", "cat"), "class 2 is named 'cat' like class 1"),
    "empty name": (_set("classes", 1, "name", " "), "class 2: name ' ' is not a non-empty"),
    "name not a string": (_set("classes", 1, "name", 42), "class 2: name 42 is not a non-empty"),
    "class not a mapping": (_set("classes", 1, "dog"), "class 2 is not a mapping"),
    "top level a list": (lambda body: body["classes"], "the top level is not `classes: [...]`"),
    "no classes": (lambda body: {}, "the top level is not `classes: [...]`"),
    "classes empty": (_set("classes", []), "`classes` is not a non-empty list"),
    "unknown top key": (_set("version", 2), "unknown top-level key 'version'"),
    "not YAML": (lambda body: "classes: [\n  - {name: cat", "is not valid YAML"),
}


@pytest.mark.parametrize("case", list(BAD_CLASS_LISTS), ids=list(BAD_CLASS_LISTS))
def test_bad_class_list_is_one_line(class_list, case):
    project, body, _ = class_list
    _mask_png(project / "refs" / "small.png", (1, 1, 5, 5), size=(10, 10))
    change, *fragments = BAD_CLASS_LISTS[case]
    path = _write_yaml(project, change(copy.deepcopy(body)))
    error = MissingFileError if case.startswith("missing") else UserInputError
    with pytest.raises(error) as exc:
        plan_class_references(path)
    _one_line(exc, str(path), *fragments)


def test_empty_mask_fails_when_loaded_naming_the_entry(class_list):
    project, body, _ = class_list
    _mask_png(project / "refs" / "a_cat.png", (0, 0, 0, 0))
    plan = plan_class_references(_write_yaml(project, body))
    with pytest.raises(UserInputError) as exc:
        plan.load()
    _one_line(exc, "class 'cat', reference 1: mask", "is empty")


def test_missing_file_and_bad_max_references(tmp_path):
    with pytest.raises(MissingFileError) as exc:
        plan_class_references(tmp_path / "nope.yaml")
    _one_line(exc, "nope.yaml does not exist")
    path = _write_yaml(tmp_path, "classes: []")
    with pytest.raises(UserInputError) as exc:
        plan_class_references(path, max_references=0)
    _one_line(exc, "--max-references 0")


# -- COCO instances file -----------------------------------------------------------------------
def _box(x0, y0, x1, y1) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def _encoded(mask: np.ndarray) -> dict:
    """Compressed RLE as labelling tools write it: pycocotools' counts as a str."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def _annotation(number, image_id, category_id, segmentation, crowd=0) -> dict:
    return {"id": number, "image_id": image_id, "category_id": category_id, "iscrowd": crowd,
            "segmentation": segmentation, "bbox": [0, 0, 1, 1], "area": 1.0}


@pytest.fixture
def coco(tmp_path):
    """images/ + instances.json; returns (json path, images folder, body, expected masks)."""
    folder = tmp_path / "images"
    body = {"images": [{"id": i, "file_name": f"sub/{i}.jpg", "width": W, "height": H}
                       for i in range(1, 6)],
            "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"},
                           {"id": 9, "name": "bird"}, {"id": 11, "name": "fish"}],
            "annotations": [
                _annotation(1, 1, 3, box_polygon(2, 2, 10, 8)),  # two cats in image 1
                _annotation(2, 1, 3, _encoded(_box(12, 10, 20, 18))),
                _annotation(3, 2, 3, box_rle(W, H, 30, 5, 40, 25, compressed=False)),
                _annotation(4, 3, 3, _encoded(_box(0, 0, 6, 6)), crowd=1),
                _annotation(5, 2, 7, box_polygon(1, 30, 20, 40)),
                _annotation(6, 4, 7, []),  # a box, no mask
                _annotation(7, 4, 11, [])]}
    for image in body["images"]:
        picture(folder / image["file_name"], (W, H), seed=image["id"])
    expected = {("cat", 1): _box(2, 2, 10, 8) | _box(12, 10, 20, 18),
                ("cat", 2): _box(30, 5, 40, 25), ("cat", 3): _box(0, 0, 6, 6),
                ("dog", 2): _box(1, 30, 20, 40)}
    return tmp_path / "instances.json", folder, body, expected


def _write_json(path, body):
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return path


def test_coco_merges_instances_per_class_and_image(coco):
    path, folder, body, expected = coco
    loaded = read_class_references(_write_json(path, body), reference_images=folder)
    assert [(c.name, c.category_id) for c in loaded.classes] == [("dog", 7), ("cat", 3)]
    dog, cat = loaded.classes
    for cls, image_ids in ((dog, [2]), (cat, [1, 2, 3])):
        assert [r.prompt for r in cls.references] == [None] * len(image_ids)
        for ref, image_id in zip(cls.references, image_ids):
            assert np.array_equal(ref.mask, expected[(cls.name, image_id)])
            assert np.array_equal(np.asarray(ref.image),
                                  np.asarray(load_image(folder / f"sub/{image_id}.jpg")))
    assert cat.sources[0] == f"{folder / 'sub/1.jpg'} (COCO annotations 1, 2)"
    assert loaded.labelled_images == {(folder / f"sub/{i}.jpg").resolve() for i in (1, 2, 3, 4)}
    assert len(loaded.warnings) == 2
    assert "'bird' (id 9) has no annotations" in loaded.warnings[0]
    assert "'fish' (id 11) has only annotations without a mask" in loaded.warnings[1]


def test_coco_kind_by_content(coco):
    path, folder, body, _ = coco
    text_file = _write_json(path.with_suffix(".txt"), body)
    assert len(plan_class_references(text_file, reference_images=folder).classes) == 2


@pytest.mark.parametrize("cap, kept", [(1, [2]), (2, [2, 3]), (3, [1, 2, 3]), (9, [1, 2, 3, 4])])
def test_coco_max_references_keeps_the_largest_masks(tmp_path, cap, kept):
    """Areas 20, 50, 50, 10: the largest first, ties by the lower image id. Images not kept are
    not opened: they are not even images here."""
    folder = tmp_path / "images"
    areas = {1: _box(0, 0, 4, 5), 2: _box(0, 0, 10, 5), 3: _box(5, 5, 15, 10), 4: _box(0, 0, 2, 5)}
    body = {"images": [{"id": i, "file_name": f"{i}.png", "width": W, "height": H}
                       for i in areas],
            "categories": [{"id": 1, "name": "cat"}],
            "annotations": [_annotation(i, i, 1, _encoded(m)) for i, m in areas.items()]}
    folder.mkdir()
    for i in areas:
        if i in kept:
            picture(folder / f"{i}.png", (W, H), seed=i)
        else:
            (folder / f"{i}.png").write_bytes(b"not an image")
    loaded = read_class_references(_write_json(tmp_path / "c.json", body),
                                   reference_images=folder, max_references=cap)
    cat, = loaded.classes
    assert len(cat.references) == len(kept)
    assert all(np.array_equal(r.mask, areas[i]) for r, i in zip(cat.references, kept))
    assert loaded.labelled_images == {(folder / f"{i}.png").resolve() for i in areas}


def test_coco_checks_decode_nothing(coco, monkeypatch):
    path, folder, body, _ = coco
    _write_json(path, body)

    def refuse(self):
        raise AssertionError("decoded while checking")

    with monkeypatch.context() as patch:
        patch.setattr(ImageFile.ImageFile, "load", refuse)
        plan = plan_class_references(path, reference_images=folder)
    assert [len(c.references) for c in plan.load().classes] == [1, 3]


def _coco_change(change):
    def apply(body):
        change(body)
        return body
    return apply


BAD_COCO = {
    "unknown category": (_coco_change(lambda b: b["annotations"][4].update(category_id=99)),
                         "annotation 5 names category id 99, which the file does not list"),
    "unknown image": (_coco_change(lambda b: b["annotations"][0].update(image_id=99)),
                      "annotation 1 names image id 99, which the file does not list"),
    "missing image file": (_coco_change(lambda b: b["images"][1].update(file_name="gone.jpg")),
                           "image 'gone.jpg' (id 2) is not in --reference-images"),
    "RLE of another size": (_coco_change(lambda b: b["annotations"][1]["segmentation"].update(
        size=[10, 10])), "annotation 2 (image 'sub/1.jpg'): its RLE has size [10, 10]"),
    "uncompressed RLE too short": (_coco_change(lambda b: b["annotations"][2]["segmentation"][
        "counts"].pop()), "annotation 3 (image 'sub/2.jpg'): its uncompressed RLE counts"),
    "bad segmentation": (_coco_change(lambda b: b["annotations"][0].update(segmentation=5)),
                         "annotation 1 (image 'sub/1.jpg'): segmentation is neither"),
    "no annotations key": (_coco_change(lambda b: b.pop("annotations")),
                           "not a COCO instances file: it has no 'annotations' list"),
    "image without width": (_coco_change(lambda b: b["images"][2].pop("width")),
                            "image 3 of the file has no 'width'"),
    "zero height": (_coco_change(lambda b: b["images"][2].update(height=0)),
                    "image 3 of the file: height 0 is not a whole number > 0"),
    "duplicate image id": (_coco_change(lambda b: b["images"][2].update(id=1)),
                           "image id 1 is used twice"),
    "duplicate category names": (_coco_change(lambda b: b["categories"][1].update(name="dog")),
                                 "categories 7 and 3 are both named 'dog'"),
    "a results list": (lambda b: b["annotations"], "not a COCO instances file"),
    "not JSON": (lambda b: '{"images": [', "is not JSON (line 1"),
}


@pytest.mark.parametrize("case", list(BAD_COCO), ids=list(BAD_COCO))
def test_bad_coco_file_is_one_line(coco, case):
    path, folder, body, _ = coco
    change, *fragments = BAD_COCO[case]
    _write_json(path, change(copy.deepcopy(body)))
    error = MissingFileError if case.startswith("missing") else UserInputError
    with pytest.raises(error) as exc:
        plan_class_references(path, reference_images=folder)
    _one_line(exc, str(path), *fragments)


def test_coco_needs_its_image_folder(coco, tmp_path):
    path, _, body, _ = coco
    _write_json(path, body)
    with pytest.raises(UserInputError) as exc:
        plan_class_references(path)
    _one_line(exc, str(path), "add --reference-images DIR")
    with pytest.raises(MissingFileError) as exc:
        plan_class_references(path, reference_images=tmp_path / "nowhere")
    _one_line(exc, "--reference-images", "nowhere is not a folder")


def test_coco_image_file_of_another_size_is_one_line(coco):
    path, folder, body, _ = coco
    picture(folder / "sub" / "1.jpg", (32, H), seed=0)  # not the copy that was labelled
    with pytest.raises(UserInputError) as exc:
        plan_class_references(_write_json(path, body), reference_images=folder)
    _one_line(exc, str(path), "category 'cat' (id 3), image 'sub/1.jpg' (id 1)",
              f"is 32x{H} but the COCO file says {W}x{H}")
