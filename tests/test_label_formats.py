"""Label files for labeling tools (sansa_cli.labels): each format read back the way its tools
read it, on synthetic masks (holes, several parts, the border, one pixel, diagonal steps)."""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from sansa_cli.errors import UserInputError
from sansa_cli.labels import (
    FORMATS,
    ClassInfo,
    CocoWriter,
    Instance,
    LabelledImage,
    LabelStudioWriter,
    PaletteWriter,
    YoloWriter,
    make_writer,
)
from sansa_cli.labels.brush import brush_rle
from sansa_cli.labels.coco import category_ids
from sansa_cli.labels.contours import corner_rings

# pycocotools' decode trips numpy 2's __array__ copy deprecation; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

H, W = 24, 32


def _shapes() -> dict[str, np.ndarray]:
    shapes = {name: np.zeros((H, W), bool) for name in
              ("ring", "two_parts", "border", "one_pixel", "diagonal", "l_shape", "disk", "line")}
    shapes["ring"][4:14, 4:14] = True
    shapes["ring"][7:10, 6:11] = False
    shapes["two_parts"][2:6, 20:30] = True
    shapes["two_parts"][15:22, 22:26] = True
    shapes["border"][:, :3] = True
    shapes["border"][-2:, :] = True
    shapes["one_pixel"][11, 17] = True
    for k in range(6):  # a staircase of pixels touching only at corners, and a block beside it
        shapes["diagonal"][10 + k, 2 + k] = True
    shapes["diagonal"][16:19, 8:12] = True
    shapes["l_shape"][3:12, 15:18] = True
    shapes["l_shape"][9:12, 15:25] = True
    yy, xx = np.mgrid[:H, :W]
    shapes["disk"] = (yy - 12) ** 2 + (xx - 16) ** 2 <= 7**2
    shapes["line"][20, 5:19] = True
    return shapes


SHAPES = _shapes()
HOLED = {"ring"}
CLASSES = [ClassInfo("crack"), ClassInfo("rust")]


def _filled(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its holes filled: everything the 4-connected outside does not reach."""
    padded = np.pad(mask, 1).astype(np.uint8)
    flood = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(padded, flood, (0, 0), 2, flags=4)
    return padded[1:-1, 1:-1] != 2


def _images(tmp_path) -> list[LabelledImage]:
    """Two targets: every shape as an instance (alternating classes), and an empty one."""
    instances = [Instance(k % 2, mask, score=0.5 + k / 20)
                 for k, mask in enumerate(SHAPES.values())]
    return [LabelledImage(tmp_path / "targets" / "photo 1.jpg", W, H, instances),
            LabelledImage(tmp_path / "targets" / "empty.png", W, H, [])]


def _coco(tmp_path, **options) -> tuple[dict, COCO]:
    path = CocoWriter(tmp_path / "out", CLASSES, **options).add_all(_images(tmp_path))[0]
    return json.loads(path.read_text()), COCO(str(path))


# --- COCO --------------------------------------------------------------------------------

def test_coco_rle_round_trips_every_instance_exactly(tmp_path):
    data, coco = _coco(tmp_path)
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in data["images"]] == \
        [(1, "photo 1.jpg", W, H), (2, "empty.png", W, H)]
    assert [(c["id"], c["name"]) for c in data["categories"]] == [(1, "crack"), (2, "rust")]
    annotations = data["annotations"]
    assert [a["id"] for a in annotations] == list(range(1, len(SHAPES) + 1))
    for k, (ann, mask) in enumerate(zip(annotations, SHAPES.values())):
        assert isinstance(ann["segmentation"]["counts"], str)
        assert np.array_equal(mask_utils.decode(ann["segmentation"]).astype(bool), mask)
        assert np.array_equal(coco.annToMask(coco.anns[ann["id"]]).astype(bool), mask)
        assert ann["area"] == int(mask.sum()) and isinstance(ann["area"], int)
        rows, cols = np.nonzero(mask)
        assert ann["bbox"] == [cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1]
        assert all(isinstance(v, float) for v in ann["bbox"])
        assert (ann["image_id"], ann["category_id"], ann["iscrowd"]) == (1, k % 2 + 1, 0)
        assert ann["score"] == pytest.approx(0.5 + k / 20)


def test_coco_annotations_load_as_results(tmp_path):
    data, coco = _coco(tmp_path)
    results = coco.loadRes(data["annotations"])
    assert len(results.anns) == len(SHAPES)
    for ann, mask in zip(results.anns.values(), SHAPES.values()):
        assert np.array_equal(results.annToMask(ann).astype(bool), mask)


def test_coco_polygons_rasterize_back_exactly_and_holed_instances_keep_rle(tmp_path):
    data, coco = _coco(tmp_path, polygons=True)
    for ann, (name, mask) in zip(data["annotations"], SHAPES.items()):
        segmentation = ann["segmentation"]
        if name in HOLED:
            assert isinstance(segmentation, dict)  # the documented rule: RLE keeps the hole
        else:
            assert isinstance(segmentation, list) and all(len(p) >= 6 for p in segmentation)
            merged = mask_utils.merge(mask_utils.frPyObjects(segmentation, H, W))
            assert np.array_equal(mask_utils.decode(merged).astype(bool), mask), name
        assert np.array_equal(coco.annToMask(coco.anns[ann["id"]]).astype(bool), mask), name
    parts = {name: len(a["segmentation"]) for a, name in zip(data["annotations"], SHAPES)}
    assert parts["two_parts"] == 2 and parts["diagonal"] == 1 and parts["one_pixel"] == 1


def test_corner_rings_are_exact_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(300):
        height, width = rng.integers(1, 13, size=2)
        mask = rng.random((height, width)) < rng.random()
        if not mask.any():
            continue
        rings, holes = corner_rings(mask)
        assert all(len(r) >= 4 for r in rings)
        polygons = [r.astype(float).ravel().tolist() for r in rings]
        merged = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
        assert np.array_equal(mask_utils.decode(merged).astype(bool), _filled(mask))
        assert holes == bool((_filled(mask) != mask).any())


def test_category_ids_are_reused_filled_in_and_checked(tmp_path):
    given = [ClassInfo("a", 18), ClassInfo("b"), ClassInfo("c", 1), ClassInfo("d")]
    assert category_ids(given) == [18, 2, 1, 3]
    assert category_ids([ClassInfo("a"), ClassInfo("b")]) == [1, 2]
    image = LabelledImage(tmp_path / "t.jpg", W, H, [Instance(1, SHAPES["disk"], 0.9)])
    path = CocoWriter(tmp_path, given).add_all([image])[0]
    data = json.loads(path.read_text())
    assert [c["id"] for c in data["categories"]] == [18, 2, 1, 3]
    assert data["annotations"][0]["category_id"] == 2
    for bad in ([ClassInfo("a", 0)], [ClassInfo("a", 3), ClassInfo("b", 3)]):
        with pytest.raises(UserInputError, match="category ids"):
            category_ids(bad)


def test_coco_file_names_follow_the_image_root(tmp_path):
    images = [LabelledImage(tmp_path / "set" / sub / "x.jpg", W, H) for sub in ("a", "b")]
    data = json.loads(CocoWriter(tmp_path / "o1", CLASSES).add_all(images)[0].read_text())
    assert [i["file_name"] for i in data["images"]] == ["a/x.jpg", "b/x.jpg"]
    path = CocoWriter(tmp_path / "o2", CLASSES, image_root=tmp_path).add_all(images)[0]
    assert json.loads(path.read_text())["images"][0]["file_name"] == "set/a/x.jpg"
    with pytest.raises(UserInputError, match="not inside image root"):
        CocoWriter(tmp_path / "o3", CLASSES, image_root=tmp_path / "set" / "a").add_all(images)
    assert not (tmp_path / "o3").exists()


# --- Label Studio ------------------------------------------------------------------------

def _reference_brush_decode(data: list[int]) -> np.ndarray:
    """Label Studio's brush RLE, decoded from the format's description: a bit string read
    most significant bit first; header = count (32), word size - 1 (5), four run-length
    widths - 1 (4 each); then chunks: flag (1), width choice (2), length - 1, then one word
    repeated (flag 1) or that many literal words (flag 0)."""
    bits = "".join(f"{byte:08b}" for byte in data)
    position = 0

    def read(n: int) -> int:
        nonlocal position
        position += n
        return int(bits[position - n:position], 2)

    count, word = read(32), read(5) + 1
    widths = [read(4) + 1 for _ in range(4)]
    out = np.zeros(count, np.uint8)
    i = 0
    while i < count:
        repeated = read(1)
        end = i + 1 + read(widths[read(2)])
        if repeated:
            out[i:end] = read(word)
        else:
            out[i:end] = [read(word) for _ in range(end - i)]
        i = end
    assert len(bits) - position < 8  # only the last byte's padding is left
    return out


@pytest.mark.parametrize("name", [*SHAPES, "empty", "full", "long_runs"])
def test_brush_rle_decodes_to_the_mask(name):
    mask = {"empty": np.zeros((H, W), bool), "full": np.ones((H, W), bool),
            "long_runs": np.pad(np.ones((150, 200), bool), ((0, 150), (0, 0)))}.get(name)
    mask = SHAPES[name] if mask is None else mask
    rgba = _reference_brush_decode(brush_rle(mask)).reshape(*mask.shape, 4)
    assert np.array_equal(rgba[:, :, 3], mask * 255)  # what Label Studio reads
    assert np.array_equal(rgba, np.repeat(mask[:, :, None] * 255, 4, axis=2))


def _tasks(tmp_path, **options) -> list[dict]:
    paths = LabelStudioWriter(tmp_path / "out", CLASSES, **options).add_all(_images(tmp_path))
    assert [p.name for p in paths] == ["labelstudio.json", "labelstudio_config.xml"]
    return json.loads(paths[0].read_text())


def test_labelstudio_brush_tasks(tmp_path):
    tasks = _tasks(tmp_path)
    assert [t["data"]["image"] for t in tasks] == [
        "/data/local-files/?d=targets/photo%201.jpg", "/data/local-files/?d=targets/empty.png"]
    prediction = tasks[0]["predictions"][0]
    assert prediction["model_version"].startswith("sansa-")
    scores = [0.5 + k / 20 for k in range(len(SHAPES))]
    assert prediction["score"] == pytest.approx(np.mean(scores))
    for region, mask, score in zip(prediction["result"], SHAPES.values(), scores):
        assert (region["type"], region["from_name"], region["to_name"]) == \
            ("brushlabels", "label", "image")
        assert (region["original_width"], region["original_height"]) == (W, H)
        assert region["score"] == pytest.approx(score)
        assert region["value"]["format"] == "rle"
        decoded = _reference_brush_decode(region["value"]["rle"]).reshape(H, W, 4)[:, :, 3]
        assert np.array_equal(decoded, mask * 255)
    assert [r["value"]["brushlabels"] for r in prediction["result"][:2]] == [["crack"], ["rust"]]
    ids = [r["id"] for t in tasks for p in t["predictions"] for r in p["result"]]
    assert len(ids) == len(set(ids)) == len(SHAPES)
    assert tasks[1]["predictions"] == [{"model_version": prediction["model_version"],
                                        "result": []}]
    config = (tmp_path / "out" / "labelstudio_config.xml").read_text()
    assert '<BrushLabels name="label" toName="image">' in config
    assert '<Label value="rust" background="#008000"/>' in config


def test_labelstudio_polygons_in_percent_rasterize_back(tmp_path):
    tasks = _tasks(tmp_path, polygons=True)
    regions = tasks[0]["predictions"][0]["result"]
    assert {r["type"] for r in regions} == {"polygonlabels"}
    assert len({r["id"] for r in regions}) == len(regions)
    by_shape = iter(regions)
    for name, mask in SHAPES.items():
        parts = 2 if name == "two_parts" else 1
        polygons = []
        for region in [next(by_shape) for _ in range(parts)]:
            points = np.array(region["value"]["points"])
            assert len(points) >= 3 and points.min() >= 0 and points.max() <= 100
            polygons.append((points * [W / 100, H / 100]).ravel().tolist())
        merged = mask_utils.merge(mask_utils.frPyObjects(polygons, H, W))
        assert np.array_equal(mask_utils.decode(merged).astype(bool), _filled(mask)), name
    assert next(by_shape, None) is None
    assert "<PolygonLabels" in (tmp_path / "out" / "labelstudio_config.xml").read_text()


def test_labelstudio_urls_from_a_document_root_or_a_prefix(tmp_path):
    tasks = _tasks(tmp_path, document_root=tmp_path.parent)
    assert tasks[0]["data"]["image"] == \
        f"/data/local-files/?d={tmp_path.name}/targets/photo%201.jpg"
    tasks = _tasks(tmp_path, image_url_prefix="https://host/bucket/")
    assert [t["data"]["image"] for t in tasks] == \
        ["https://host/bucket/photo%201.jpg", "https://host/bucket/empty.png"]
    with pytest.raises(UserInputError, match="not inside the document root"):
        _tasks(tmp_path, document_root=tmp_path / "elsewhere")


# --- YOLO --------------------------------------------------------------------------------

def test_yolo_lines_parse_stay_normalised_and_fill_back(tmp_path):
    paths = YoloWriter(tmp_path / "out", CLASSES).add_all(_images(tmp_path))
    folder = tmp_path / "out" / "yolo"
    assert paths == [folder / "labels" / "photo 1.txt", folder / "labels" / "empty.txt",
                     folder / "data.yaml"]
    assert (folder / "labels" / "empty.txt").read_text() == ""
    lines = (folder / "labels" / "photo 1.txt").read_text().splitlines()
    drawn = {k: np.zeros((H, W), np.uint8) for k in range(2)}
    rows = []
    for line in lines:
        tokens = line.split()
        values = np.array(tokens[1:], dtype=float)
        assert len(values) >= 6 and len(values) % 2 == 0
        assert values.min() >= 0 and values.max() <= 1
        rows.append(int(tokens[0]))
        # as Ultralytics' polygon2mask: pixel coordinates cast to int32, then fillPoly
        points = (values.reshape(-1, 2) * [W, H]).astype(np.int32)
        layer = np.zeros((H, W), np.uint8)
        cv2.fillPoly(layer, [points], 1)
        drawn[rows[-1]] |= layer
    assert len(lines) == len(SHAPES) + 1  # one line per part: two_parts has two
    for k in range(2):
        expected = np.any([_filled(m) for i, m in enumerate(SHAPES.values()) if i % 2 == k],
                          axis=0)
        assert np.array_equal(drawn[k].astype(bool), expected)
    data = yaml.safe_load((folder / "data.yaml").read_text())
    assert data == {"path": str(folder.absolute()), "train": "images", "val": "images",
                    "names": {0: "crack", 1: "rust"}}


# --- palette PNG -------------------------------------------------------------------------

def test_palette_png_holds_class_indices_and_classes_txt_names_them(tmp_path):
    semantic = np.zeros((H, W), np.uint8)
    semantic[SHAPES["disk"]] = 1
    semantic[SHAPES["border"]] = 2
    low, high = SHAPES["two_parts"].copy(), SHAPES["two_parts"].copy()
    high[:, :24] = False  # overlaps `low`; the higher score keeps the overlap
    painted = LabelledImage(tmp_path / "b.jpg", W, H,
                            [Instance(1, high, 0.9), Instance(0, low, 0.4)])
    paths = PaletteWriter(tmp_path / "out", CLASSES).add_all(
        [LabelledImage(tmp_path / "a.jpg", W, H, semantic=semantic), painted])
    assert [p.name for p in paths] == ["a.png", "b.png", "classes.txt"]
    picture = Image.open(paths[0])
    assert picture.mode == "P" and picture.size == (W, H)
    assert np.array_equal(np.array(picture), semantic)
    assert picture.getpalette()[:12] == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0]
    expected = np.where(low, 1, 0).astype(np.uint8)
    expected[high] = 2
    assert np.array_equal(np.array(Image.open(paths[1])), expected)
    assert paths[2].read_text() == "background\ncrack\nrust\n"


# --- shared behaviour --------------------------------------------------------------------

@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_file_is_written_atomically(tmp_path, monkeypatch, fmt):
    import sansa_cli.artifacts.files as files

    replaced = []
    real_replace = files.os.replace

    def recording_replace(source, dest):
        replaced.append(str(dest))
        real_replace(source, dest)

    monkeypatch.setattr(files.os, "replace", recording_replace)
    paths = make_writer(fmt, tmp_path / "out", CLASSES, polygons=True).add_all(_images(tmp_path))
    written = sorted(str(p) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == sorted(replaced) == sorted(str(p) for p in paths)


def test_a_failing_run_writes_no_collection_file(tmp_path):
    with pytest.raises(UserInputError, match="class index 2"):
        with CocoWriter(tmp_path / "out", CLASSES) as writer:
            writer.add(LabelledImage(tmp_path / "t.jpg", W, H, [Instance(2, SHAPES["disk"], 1)]))
    assert not (tmp_path / "out").exists()


def test_rle_and_brush_need_no_opencv_and_polygons_name_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` now raises ImportError
    for fmt in ("coco", "labelstudio", "png"):
        make_writer(fmt, tmp_path / fmt, CLASSES).add_all(_images(tmp_path))
    for fmt in ("coco", "labelstudio", "yolo"):
        with pytest.raises(UserInputError) as caught:
            make_writer(fmt, tmp_path / "p", CLASSES, polygons=True).add_all(_images(tmp_path))
        assert 'pip install "sansa-cli[labels]"' in str(caught.value)
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("build, message", [
    (lambda: Instance(0, np.zeros((2, 2, 2)), 0.5), "2-D"),
    (lambda: Instance(0, np.zeros((2, 2)), 1.5), r"\[0, 1\]"),
    (lambda: Instance(0, np.zeros((2, 2)), float("nan")), r"\[0, 1\]"),
    (lambda: LabelledImage("t.jpg", 3, 2, [Instance(0, np.zeros((3, 2)), 0.5)]), "HxW"),
    (lambda: LabelledImage("t.jpg", 3, 2, semantic=np.zeros((2, 3), np.int32)), "uint8"),
    (lambda: PaletteWriter("o", [ClassInfo("a"), ClassInfo("a")]), "unique"),
    (lambda: PaletteWriter("o", [ClassInfo("a\nb")]), "spans lines"),
    (lambda: PaletteWriter("o", []), "between 1 and 255"),
    (lambda: make_writer("voc", "o", CLASSES), "unknown label format"),
])
def test_bad_inputs_are_refused_in_one_line(build, message):
    with pytest.raises(UserInputError, match=message):
        build()


@pytest.mark.parametrize("fmt", ["yolo", "png"])
def test_targets_sharing_a_stem_are_refused(tmp_path, fmt):
    writer = make_writer(fmt, tmp_path / "out", CLASSES)
    writer.add(LabelledImage(tmp_path / "a" / "x.jpg", W, H))
    with pytest.raises(UserInputError, match="would share"):
        writer.add(LabelledImage(tmp_path / "b" / "x.png", W, H))


def test_a_target_given_twice_is_refused(tmp_path):
    writer = CocoWriter(tmp_path / "out", CLASSES)
    writer.add(LabelledImage(tmp_path / "x.jpg", W, H))
    with pytest.raises(UserInputError, match="given twice"):
        writer.add(LabelledImage(tmp_path / "x.jpg", W, H))


def test_an_instance_from_a_shared_label_map_writes_as_its_mask(tmp_path):
    from sansa_cli.core.components import Component, connected_components

    mask = SHAPES["disk"] | np.roll(SHAPES["disk"], W // 2, axis=1)
    labels, count = connected_components(mask)
    parts = [Component(labels, i, int((labels == i).sum())) for i in range(1, count + 1)]
    lazy = [Instance(1, part, 0.8) for part in parts]
    eager = [Instance(1, part.mask(), 0.8) for part in parts]
    assert all(a.shape == b.shape and np.array_equal(a.mask, b.mask) for a, b in zip(lazy, eager))
    written = {}
    for name, instances in (("lazy", lazy), ("eager", eager)):
        out = tmp_path / name
        CocoWriter(out, CLASSES).add_all([LabelledImage(tmp_path / "t.jpg", W, H, instances)])
        written[name] = json.loads((out / "coco.json").read_text())["annotations"]
    assert written["lazy"] == written["eager"] and len(written["lazy"]) == count
    assert Instance(0, Component(labels, count + 1, 0), 0.5).is_empty()
