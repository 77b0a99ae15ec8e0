"""``sansa predict --references FILE --format ...``: several classes into label files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.cli_helpers import assert_one_line_error, run_sansa
from tests.conftest import blob_image, blob_mask

# pycocotools 2.0.x trips numpy 2's copy-keyword deprecation inside its decoder
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture()
def class_list(scene, tmp_path):
    (r0, m0), (r1, m1), _ = scene["refs"]
    other = blob_image(tmp_path / "refs" / "other.png", (80, 80), seed=7, center=(20, 60))
    blob_mask(tmp_path / "refs" / "other_mask.png", (80, 80), center=(20, 60))
    path = tmp_path / "classes.yaml"
    path.write_text(yaml.safe_dump({"classes": [
        {"name": "disc", "references": [{"image": str(r0), "mask": str(m0)},
                                        {"image": str(r1), "box": [10, 10, 50, 50]}]},
        {"name": "corner", "references": [{"image": "refs/other.png",
                                           "mask": "refs/other_mask.png"}]}]}))
    assert other.exists()
    return path


def test_several_classes_into_every_format(class_list, scene, tmp_path, tiny_model_args, capsys,
                                           monkeypatch):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    out = tmp_path / "labels"
    code, stdout, err = run_sansa(
        ["predict", scene["dir"] / "targets", "--references", class_list, "--out", out,
         "--format", "png,coco,yolo,labelstudio", "--json", *tiny_model_args, "--adapters", "none"],
        capsys, monkeypatch)
    assert code == 0, err
    assert "disc" in stdout and "corner" in stdout
    summary = json.loads((out / "predictions.json").read_text())
    assert summary["classes"] == ["disc", "corner"] and len(summary["targets"]) == 4
    coco = COCO(str(out / "coco.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["disc", "corner"]
    for target, row in zip(scene["targets"], summary["targets"]):
        palette = np.asarray(Image.open(out / f"{target.stem}.png"))
        assert palette.shape == Image.open(target).size[::-1]
        image_id = next(i["id"] for i in coco.dataset["images"]
                        if i["file_name"].endswith(target.name))
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        assert len(anns) == sum(len(c["instances"]) for c in row["classes"])
        for ann in anns:  # every instance is inside its class's pixels of the palette PNG
            mask = mask_utils.decode(ann["segmentation"]).astype(bool)
            assert mask.sum() == ann["area"]
        assert (out / "yolo" / "labels" / f"{target.stem}.txt").exists()
    assert (out / "classes.txt").read_text().split() == ["background", "disc", "corner"]
    tasks = json.loads((out / "labelstudio.json").read_text())
    assert len(tasks) == 4 and all("predictions" in task for task in tasks)


def test_min_score_writes_nothing_for_absent_classes(class_list, scene, tmp_path,
                                                     tiny_model_args, capsys, monkeypatch):
    out = tmp_path / "strict"
    code, _, err = run_sansa(["predict", scene["dir"] / "targets", "--references", class_list,
                              "--out", out, "--format", "coco", "--min-score", "1",
                              *tiny_model_args, "--adapters", "none"], capsys, monkeypatch)
    assert code == 0, err
    coco = json.loads((out / "coco.json").read_text())
    assert coco["annotations"] == [] and len(coco["images"]) == 4


def test_references_from_coco_keep_their_category_ids(scene, tmp_path, tiny_model_args, capsys,
                                                       monkeypatch):
    """Annotated in a labeling tool (COCO in), labelled by sansa (COCO out, same ids), and the
    annotated images are not labelled again."""
    from pycocotools import mask as mask_utils

    folder = tmp_path / "project"
    folder.mkdir()
    images, annotations = [], []
    for i, (ref, mask) in enumerate(scene["refs"][:2], start=1):
        name = f"ref{i}.png"
        Image.open(ref).save(folder / name)
        m = np.asarray(Image.open(mask)) > 0
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        images.append({"id": i, "file_name": name, "width": m.shape[1], "height": m.shape[0]})
        annotations.append({"id": i, "image_id": i, "category_id": 17, "segmentation": rle,
                            "area": int(m.sum()), "bbox": [0, 0, 1, 1], "iscrowd": 0})
    for target in scene["targets"]:
        Image.open(target).save(folder / target.name)
    source = tmp_path / "export.json"
    source.write_text(json.dumps({"images": images, "annotations": annotations,
                                  "categories": [{"id": 17, "name": "disc"}]}))
    out = tmp_path / "labels"
    code, _, err = run_sansa(["predict", folder, "--references", source, "--reference-images",
                              folder, "--out", out, "--format", "coco", *tiny_model_args,
                              "--adapters", "none"], capsys, monkeypatch)
    assert code == 0, err
    coco = json.loads((out / "coco.json").read_text())
    assert coco["categories"] == [{"id": 17, "name": "disc", "supercategory": "sansa"}] or \
        [c["id"] for c in coco["categories"]] == [17]
    labelled = sorted(i["file_name"] for i in coco["images"])
    assert labelled == sorted(t.name for t in scene["targets"])  # ref1, ref2 left out
    assert all(a["category_id"] == 17 for a in coco["annotations"])


@pytest.mark.parametrize("extra, fragment", [
    (["--format", "tiff"], "--format 'tiff'"),
    (["--min-score", "2"], "--min-score 2"),
    (["--box", "1,1,5,5"], "drop --box"),
    (["--html"], "--html works on an output folder"),
])
def test_bad_label_options_are_one_line(extra, fragment, class_list, scene, tmp_path,
                                        tiny_model_args, capsys, monkeypatch):
    out = [] if "--html" in extra else ["--out", tmp_path / "o"]
    code, _, err = run_sansa(["predict", scene["dir"] / "targets", "--references", class_list,
                              *out, *extra, *tiny_model_args, "--adapters", "none"],
                             capsys, monkeypatch)
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "o").exists()


def test_several_classes_with_overlays_and_a_review_page(class_list, scene, tmp_path,
                                                         tiny_model_args, capsys, monkeypatch):
    out = tmp_path / "labels"
    code, _, err = run_sansa(["predict", scene["dir"] / "targets", "--references", class_list,
                              "--out", out, "--overlay", "--html", "--format", "coco",
                              *tiny_model_args, "--adapters", "none"], capsys, monkeypatch)
    assert code == 0, err
    page = (out / "index.html").read_text()
    for target in scene["targets"]:
        with Image.open(out / f"{target.stem}_overlay.jpg") as picture:
            assert picture.format == "JPEG"
        assert (out / "thumbnails" / f"{target.stem}.jpg").is_file()
        assert f"{target.stem}_overlay.jpg" in page and target.name in page
    assert "disc" in page and "corner" in page
