"""``sansa prepare``: COCO-20i from the official JSON, folder checks, episode lists, CLI errors."""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sansa_cli.datasets import read_episode_list
from sansa_cli.datasets.coco20i import Coco20i
from sansa_cli.datasets.prepare import check_dataset, prepare_dataset
from sansa_cli.datasets.prepare_coco import build_coco20i
from sansa_cli.datasets.fss1000 import Fss1000
from sansa_cli.errors import UserInputError
from tests.datasets_fixtures import (
    COCO_CATEGORY_IDS, make_coco20i, make_coco_source, make_folder, make_fss1000,
)

REPO = Path(__file__).resolve().parents[1]


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_prepare_coco20i_builds_what_the_plugin_loads(tmp_path):
    source = make_coco_source(tmp_path / "coco")
    before = tree_digest(source)
    report = build_coco20i(source, tmp_path / "out", min_pixels=1)
    assert tree_digest(source) == before  # sources untouched
    assert report.written == 12 and report.kept == 0 and not report.missing_images
    val = pickle.loads((tmp_path / "out/splits/val/fold0.pkl").read_bytes())
    assert sorted(val) == list(range(80))
    assert {c for c, images in val.items() if images} == {0, 4, 8}
    trn = pickle.loads((tmp_path / "out/splits/trn/fold0.pkl").read_bytes())
    assert {c for c, images in trn.items() if images} == {1, 2, 3}
    assert not any(pickle.loads((tmp_path / "out/splits/val/fold1.pkl").read_bytes()).values())

    dataset = Coco20i(tmp_path / "out", 0, "val", image_root=source)
    assert dataset.classes == list(range(0, 80, 4))  # every fold class, also those without images
    assert {c for c in dataset.classes if dataset.images(c)} == {0, 4, 8}
    image = "val2014/COCO_val2014_000000000001.jpg"  # big class 0 box, small class 4 box on it
    raw = np.asarray(Image.open(tmp_path / "out/annotations/val2014/COCO_val2014_000000000001.png"))
    assert set(np.unique(raw)) == {0, 1, 5}  # class index + 1
    assert raw[10, 10] == 5 and raw[3, 3] == 1  # the smaller instance is on top
    assert dataset.load_mask(image, 0).sum() == 18 * 16 - 6 * 6
    assert dataset.load_mask(image, 4).sum() == 6 * 6
    assert dataset.load_image(image).size == (24, 20)


def test_prepare_coco20i_resumes_and_uses_coco_category_order(tmp_path):
    source = make_coco_source(tmp_path, val_classes=(79, 3, 7), train_classes=(0, 1, 2))
    build_coco20i(source, min_pixels=1)
    mask = source / "annotations/val2014/COCO_val2014_000000000001.png"
    stamp = mask.stat().st_mtime_ns
    again = build_coco20i(source, min_pixels=1)
    assert again.written == 0 and again.kept == 12 and mask.stat().st_mtime_ns == stamp
    assert COCO_CATEGORY_IDS[79] == 90
    split = source / "splits/val/fold3.pkl"
    assert again.split_files == [] and not again.kept_split_files  # the same tables: untouched
    split.write_bytes(pickle.dumps({c: [] for c in range(80)}))  # the user's own split file
    mine = split.read_bytes()
    third = build_coco20i(source, min_pixels=1)
    assert split.read_bytes() == mine and third.kept_split_files == [split]
    assert any(str(split) in line and "kept" in line for line in third.summary())
    split.unlink()
    build_coco20i(source, min_pixels=1)  # a deleted split file is built again
    dataset = Coco20i(source, 3, "val")
    assert [c for c in dataset.classes if dataset.images(c)] == [3, 7, 79]  # category 90 -> 79


def test_check_reports_broken_and_missing_files(tmp_path):
    root, _ = make_fss1000(tmp_path)
    (root / "data/dog/2.jpg").write_bytes(b"not a jpeg")
    (root / "data/egg/3.png").unlink()
    report = check_dataset(Fss1000, root, {})
    assert report.classes == {"train": 2, "val": 1, "test": 3}
    assert report.images["test"] == 12
    assert report.missing == [root / "data/egg/3.png"]
    assert [p for p, _ in report.broken] == [root / "data/dog/2.jpg"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sansa_cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def test_cli_check_and_episodes(tmp_path):
    from typer.testing import CliRunner

    from sansa_cli.cli.app import app

    root, _ = make_folder(tmp_path / "parts")
    runner = CliRunner()
    result = runner.invoke(app, ["prepare", "folder", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert "folder at" in result.output and "0 missing, 0 broken" in result.output
    out = tmp_path / "lists"
    result = runner.invoke(app, ["prepare", "folder", "--data-root", str(root), "--episodes",
                                 "--shots", "1,2", "--seed", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["folder_fold0_test_1shot_seed4.json",
                                       "folder_fold0_test_2shot_seed4.json"]
    listed = read_episode_list(files[1], shot=2)
    assert listed.seed == 4 and len(listed.episodes) == 9
    again = runner.invoke(app, ["prepare", "folder", "--root", str(root), "--episodes",
                                "--shots", "2", "--seed", "4", "--out", str(tmp_path / "x.json")])
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "x.json").read_text()) == json.loads(files[1].read_text())


def test_cli_prepare_coco20i_from_json(tmp_path):
    from typer.testing import CliRunner

    from sansa_cli.cli.app import app

    source = make_coco_source(tmp_path / "coco")
    result = CliRunner().invoke(app, ["prepare", "coco20i", "--coco-root", str(source),
                                      "--out", str(tmp_path / "hsnet"),
                                      "--dataset-option", "min_pixels=1"])
    assert result.exit_code == 0, result.output
    assert "12 written" in result.output and "0 missing, 0 broken" in result.output
    assert len(list((tmp_path / "hsnet/annotations/val2014").glob("*.png"))) == 6
    assert "17 of 20 classes have fewer than 2 images" in result.output  # all 20 still count


def test_build_options_are_dataset_options(tmp_path):
    """``min_pixels`` reaches the build, is left out of the dataset, and is checked."""
    source = make_coco_source(tmp_path / "coco")
    assert "min_pixels" in Coco20i.option_names()
    built, report = prepare_dataset(Coco20i, source, tmp_path / "strict", {"min_pixels": 100})
    assert built.root == tmp_path / "strict" and built.options == {"image_root": source}
    assert "12 written" in built.summary[0] and report.images["val"] == 6
    val = pickle.loads((tmp_path / "strict/splits/val/fold0.pkl").read_bytes())
    assert len(val[0]) == 2  # only the 2 images where class 0 is the big box (4 at min_pixels=1)
    assert Coco20i.create(tmp_path / "strict", 0, "val", min_pixels=1).images(0)  # accepted
    with pytest.raises(UserInputError, match="min_pixels='many'"):
        Coco20i.build(source, None, {"min_pixels": "many"})
    _, report = prepare_dataset(Coco20i, tmp_path / "strict", None, {"min_pixels": 5})
    assert any("min_pixels only applies to builds" in note for note in report.notes)
    with pytest.raises(UserInputError, match="nothing to build"):
        prepare_dataset(Coco20i, tmp_path / "strict", tmp_path / "elsewhere", {})


def test_a_fold_class_without_images_still_counts(tmp_path):
    """Emptying a class from the val split file keeps all 20 classes; episodes skip it."""
    root, _ = make_coco20i(tmp_path)
    path = root / "splits/val/fold0.pkl"
    table = pickle.loads(path.read_bytes())
    table[4], table[8] = [], table[8][:1]  # class 4: no image; class 8: too few for an episode
    path.write_bytes(pickle.dumps(table))
    dataset = Coco20i(root, 0, "val")
    assert len(dataset.classes) == 20 and dataset.images(4) == []
    assert {e.class_id for e in dataset.episodes(1, count=50)} == {0}
    assert check_dataset(Coco20i, root, {}, folds=[0]).classes["val"] == 20


@pytest.mark.parametrize("args,names", [
    (["prepare", "fss1000", "--root", "{tmp}/absent"], "absent"),
    (["prepare", "folder", "--root", "{tmp}"], "images/ subfolder"),
    (["prepare", "pascal5i", "--root", "{tmp}"], "--splits"),
    (["prepare", "coco20i", "--coco-root", "{tmp}"], "--splits"),
    (["prepare", "nosuchset", "--root", "{tmp}"], "unknown dataset 'nosuchset'"),
    (["prepare", "folder", "--root", "{tmp}", "--option", "oops"], "KEY=VALUE"),
    (["prepare", "folder", "--data-root", "{tmp}", "--dataset-option", "colour=red"],
     "no option colour"),
    (["prepare", "folder", "--data-root", "{tmp}/absent"], "--data-root"),
    (["prepare", "folder"], "pass --data-root DIR"),
    (["prepare", "fss1000", "--root", "{tmp}", "--episodes", "--shots", "one"], "--shots"),
])
def test_cli_bad_input_is_one_error_line(tmp_path, args, names):
    result = run_cli(*[a.format(tmp=tmp_path) for a in args])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0], lines


def test_cli_episode_lists_record_absolute_options_typed_relative(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sansa_cli.cli.app import app

    root, _ = make_fss1000(tmp_path / "fss")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["prepare", "fss1000", "--data-root", "fss", "--splits",
                                      "fss/splits", "--episodes", "--shots", "1", "--count", "3",
                                      "--out", "one.json"])
    assert result.exit_code == 0, result.output
    body = json.loads((tmp_path / "one.json").read_text())
    assert body["options"] == {"splits": str((root / "splits").resolve())}
