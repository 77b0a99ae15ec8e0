"""``sansa predict`` over many targets: overlapped workers, --recursive, --resume."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.cli_helpers import assert_one_line_error, run_sansa
from tests.conftest import blob_image

JOURNAL = ".sansa-predict.jsonl"


def predict(scene, model_args, *targets_and_options):
    ref, mask = scene["refs"][0]
    return ["predict", ref, mask, *targets_and_options, "--adapters", "none", *model_args]


def masks(folder):
    return {p.relative_to(folder).as_posix(): np.asarray(Image.open(p))
            for p in sorted(folder.rglob("*.png"))}


def rows(out):
    return [{k: v for k, v in row.items() if k != "seconds"}
            for row in json.loads((out / "predictions.json").read_text())["targets"]]


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    for i in range(5):
        blob_image(folder / f"p{i}.png", size=(64 + 8 * i, 48), seed=i, center=(20 + i, 20))
    return folder


def counting_prepare(monkeypatch):
    """Record which targets the model reads."""
    from sansa_cli.core.segmenter import SansaModel

    seen, real = [], SansaModel.prepare

    def prepare(self, target):
        seen.append(target.name)
        return real(self, target)

    monkeypatch.setattr(SansaModel, "prepare", prepare)
    return seen


def test_workers_leave_the_outputs_bit_identical(scene, tiny_model_args, photos, tmp_path, capsys,
                                                 monkeypatch):
    outs = {}
    for workers in ("0", "3"):
        outs[workers] = tmp_path / f"out{workers}"
        code, _, err = run_sansa(predict(scene, tiny_model_args, photos, "--out", outs[workers],
                                         "--json", "--workers", workers, "--batch-size", "2"),
                                 capsys, monkeypatch)
        assert code == 0, err
    plain, threaded = masks(outs["0"]), masks(outs["3"])
    assert plain.keys() == threaded.keys() and len(plain) == 5
    assert all(np.array_equal(plain[k], threaded[k]) for k in plain)
    assert rows(outs["0"]) == rows(outs["3"])
    assert [r["image"] for r in rows(outs["3"])] == [str(photos / f"p{i}.png") for i in range(5)]


def test_recursive_mirrors_subfolders_and_skips_the_out_folder(scene, tiny_model_args, photos,
                                                               capsys, monkeypatch):
    blob_image(photos / "a" / "b" / "deep.png", seed=9)
    blob_image(photos / "a" / "p0.png", seed=8)  # same stem as photos/p0.png: mirrored apart
    blob_image(photos / ".hidden" / "no.png", seed=7)
    code, _, err = run_sansa(predict(scene, tiny_model_args, photos, "--out", photos / "masks"),
                             capsys, monkeypatch)
    assert code == 0, err
    assert "1 subfolder of images not searched; add --recursive" in err
    shutil.rmtree(photos / "masks")
    out = photos / "masks"  # inside the walked folder: never read as targets
    for _ in range(2):
        code, _, err = run_sansa(predict(scene, tiny_model_args, photos, "--out", out,
                                         "--recursive", "--json", "--html"), capsys, monkeypatch)
        assert code == 0, err
    assert sorted(masks(out)) == ["a/b/deep.png", "a/p0.png", *(f"p{i}.png" for i in range(5))]
    assert [r["mask"] for r in rows(out)][:2] == ["a/b/deep.png", "a/p0.png"]
    thumbs = sorted(p.relative_to(out / "thumbnails").as_posix()
                    for p in (out / "thumbnails").rglob("*.jpg"))
    assert thumbs == ["a/b/deep.jpg", "a/p0.jpg", *(f"p{i}.jpg" for i in range(5))]
    page = (out / "index.html").read_text()
    assert 'href="a/b/deep.png"' in page and "thumbnails/a/b/deep.jpg" in page


def test_resume_continues_an_interrupted_run(scene, tiny_model_args, photos, tmp_path, capsys,
                                             monkeypatch):
    good = (photos / "p3.png").read_bytes()
    (photos / "p3.png").write_bytes(good[:60])  # its header reads; decoding fails mid-run
    out = tmp_path / "out"
    code, _, err = run_sansa(predict(scene, tiny_model_args, photos, "--out", out, "--json",
                                     "--batch-size", "1", "--workers", "2"), capsys, monkeypatch)
    assert_one_line_error(code, err, "p3.png", "stopped at target 4 of 5",
                          "outputs of 3 targets before it written")
    (photos / "p3.png").write_bytes(good)
    (out / "p1.png").write_bytes(b"not the mask")  # damaged since: redone
    seen = counting_prepare(monkeypatch)
    code, _, err = run_sansa(predict(scene, tiny_model_args, photos, "--out", out, "--json",
                                     "--resume"), capsys, monkeypatch)
    assert code == 0, err
    assert "resuming: 2 of 5 targets already done" in err
    assert sorted(seen) == ["p1.png", "p3.png", "p4.png"]
    fresh = tmp_path / "fresh"
    code, _, err = run_sansa(predict(scene, tiny_model_args, photos, "--out", fresh, "--json"),
                             capsys, monkeypatch)
    assert code == 0, err
    assert rows(out) == rows(fresh)
    assert all(np.array_equal(a, b) for a, b in zip(masks(out).values(), masks(fresh).values()))
    seen.clear()
    code, _, err = run_sansa(predict(scene, tiny_model_args, photos, "--out", out, "--resume"),
                             capsys, monkeypatch)
    assert code == 0 and seen == [] and "5 of 5 targets already done" in err


def test_resume_refuses_other_settings_and_needs_out(scene, tiny_model_args, photos, tmp_path,
                                                     capsys, monkeypatch):
    out = tmp_path / "out"
    code, _, err = run_sansa(predict(scene, tiny_model_args, photos, "--out", out), capsys,
                             monkeypatch)
    assert code == 0, err
    ref, mask = scene["refs"][1]
    code, _, err = run_sansa(predict(scene, tiny_model_args, photos, "--out", out, "--resume",
                                     "--ref", ref, mask), capsys, monkeypatch)
    assert_one_line_error(code, err, "--resume: references was", "same settings")
    code, _, err = run_sansa(predict(scene, tiny_model_args, photos, "--resume"), capsys,
                             monkeypatch)
    assert_one_line_error(code, err, "--resume works on an output folder")
    code, _, err = run_sansa(predict(scene, tiny_model_args, photos, "--workers", "-1"), capsys,
                             monkeypatch)
    assert_one_line_error(code, err, "--workers -1")


def test_resumed_labelling_keeps_every_target_in_the_collections(scene, tiny_model_args, photos,
                                                                 tmp_path, capsys, monkeypatch):
    out = tmp_path / "labels"
    args = predict(scene, tiny_model_args, photos, "--out", out, "--format", "coco,yolo",
                   "--json", "--class-name", "blob")
    code, _, err = run_sansa(args, capsys, monkeypatch)
    assert code == 0, err
    whole = json.loads((out / "coco.json").read_text())
    lines = (out / JOURNAL).read_text().splitlines()
    (out / JOURNAL).write_text("\n".join(lines[:3]) + "\n")  # as if killed after 2 targets
    (out / "coco.json").unlink()
    seen = counting_prepare(monkeypatch)
    code, _, err = run_sansa([*args, "--resume"], capsys, monkeypatch)
    assert code == 0, err
    assert sorted(seen) == ["p2.png", "p3.png", "p4.png"]
    resumed = json.loads((out / "coco.json").read_text())
    assert resumed == whole
    assert len(list((out / "yolo" / "labels").glob("*.txt"))) == 5
    assert len(json.loads((out / "predictions.json").read_text())["targets"]) == 5
