"""``sansa visualize-features`` on the tiny model, the PCA helper, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.cli_helpers import assert_one_line_error, run_sansa
from tests.conftest import blob_image, blob_mask

# Images of 96x80 (landscape) and 60x100 (portrait). A panel keeps the image's aspect with its
# longer side 256 px: 256x213 and 154x256. A picture is one panel per column (image, frozen,
# [adapted]) with 4 px between columns and an 18 px title bar on top.
SIZES = {"cat": (96, 80), "dog": (60, 100)}


def picture_size(image_size, columns):
    w, h = image_size
    pw, ph = (256, round(256 * h / w)) if w >= h else (round(256 * w / h), 256)
    return columns * pw + (columns - 1) * 4, ph + 18


@pytest.fixture()
def classes(tmp_path):
    """images/<class>/ and masks/<class>/, two images per class, as users lay them out."""
    for c, (name, size) in enumerate(SIZES.items()):
        for i in range(2):
            centre = (size[0] * (0.35 + 0.3 * i), size[1] * 0.5)
            blob_image(tmp_path / "images" / name / f"{name}{i}.png", size, seed=4 * c + i,
                       center=centre)
            blob_mask(tmp_path / "masks" / name / f"{name}{i}.png", size, center=centre)
    return tmp_path


@pytest.fixture(scope="module")
def adapter_file(tmp_path_factory):
    """An AdaptFormer file for the tiny model with non-zero weights (a fresh one is a no-op)."""
    from tests.eval_fixtures import adapter_file

    return adapter_file(tmp_path_factory.mktemp("adapters") / "adaptformer.safetensors")


def run(args, capsys, monkeypatch):
    return run_sansa(["visualize-features", *args], capsys, monkeypatch)


def images_of(root):
    return [root / "images" / name / f"{name}{i}.png" for name in SIZES for i in range(2)]


def test_pictures_and_scatter_with_masks(classes, tiny_model_args, capsys, monkeypatch):
    out = classes / "out"
    code, stdout, err = run([classes / "images" / "cat", classes / "images" / "dog",
                             "--masks", classes / "masks" / "cat",
                             "--masks", classes / "masks" / "dog", "--out", out,
                             *tiny_model_args],
                            capsys, monkeypatch)
    assert code == 0, err
    for image in images_of(classes):
        with Image.open(out / f"{image.stem}_pca.png") as picture:
            assert picture.size == picture_size(SIZES[image.parent.name], columns=2)
            assert picture.mode == "RGB"
    assert (out / "scatter.png").is_file()
    assert "5 pictures" in stdout
    assert not list(out.glob("*.part"))


def test_no_scatter_without_masks_and_deterministic(classes, tiny_model_args, capsys,
                                                    monkeypatch):
    pictures = []
    for name in ("a", "b"):
        out = classes / name
        code, _, err = run([classes / "images" / "cat", classes / "images" / "dog",
                            "--out", out, *tiny_model_args], capsys, monkeypatch)
        assert code == 0, err
        assert not (out / "scatter.png").exists()
        pictures.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert len(pictures[0]) == 4 and pictures[0] == pictures[1]


def test_adapters_add_a_column_and_a_scatter_panel(classes, tiny_model_args, adapter_file,
                                                   capsys, monkeypatch):
    out, frozen = classes / "adapted", classes / "frozen"
    masks = ["--masks", classes / "masks" / "cat", "--masks", classes / "masks" / "dog"]
    for dest, extra in ((frozen, []), (out, ["--adapters", adapter_file])):
        code, _, err = run([classes / "images" / "cat", classes / "images" / "dog", *masks,
                            "--classes", "cat,cat,dog,dog", "--out", dest, *tiny_model_args,
                            *extra],
                           capsys, monkeypatch)
        assert code == 0, err
    with Image.open(out / "cat0_pca.png") as picture:
        assert picture.size == picture_size(SIZES["cat"], columns=3)
        adapted = np.asarray(picture)
    with Image.open(frozen / "cat0_pca.png") as picture:
        # the frozen column is the same whether or not adapters are given
        np.testing.assert_array_equal(np.asarray(picture), adapted[:, :picture.width])
    pw = picture_size(SIZES["cat"], 1)[0]
    assert not np.array_equal(adapted[18:, pw + 4:2 * pw + 4], adapted[18:, 2 * pw + 8:])
    with Image.open(out / "scatter.png") as a, Image.open(frozen / "scatter.png") as f:
        assert a.width > f.width and a.height == f.height


def test_fit_pca_separates_two_clusters():
    from sansa_cli.visualize.features_pca import fit_pca

    gen = torch.Generator().manual_seed(0)
    direction = torch.randn(32, generator=gen)
    noise = [torch.randn(200, 32, generator=gen) * 0.1 for _ in range(2)]
    a, b = noise[0] + direction, noise[1] - direction
    pca = fit_pca([a, b])
    za, zb = pca.project(a)[:, 0], pca.project(b)[:, 0]
    assert za.min() > zb.max() or zb.min() > za.max()  # the clusters land apart on PC1
    assert float(pca.explained[0]) > 0.9
    assert abs(float(pca.components[:, 0] @ direction.double()) / direction.norm()) > 0.99
    rgb = pca.to_rgb(torch.cat([a, b]))
    assert rgb.dtype == np.uint8 and rgb.shape == (400, 3)
    assert abs(int(rgb[:200, 0].astype(int).mean()) - int(rgb[200:, 0].astype(int).mean())) > 200


def _bad(classes, tmp_path, case):
    imgs = [classes / "images" / "cat", classes / "images" / "dog"]
    masks = [m for name in SIZES for m in ["--masks", classes / "masks" / name]]
    if case == "count":
        return imgs + masks[:2], "2 masks for 4 images"
    if case == "size":
        blob_mask(tmp_path / "wrong" / "cat0.png", (50, 50))
        return ([classes / "images" / "cat" / "cat0.png", classes / "images" / "dog" / "dog0.png",
                 "--masks", tmp_path / "wrong" / "cat0.png", "--masks",
                 classes / "masks" / "dog" / "dog0.png"], "same size")
    if case == "empty":
        Image.fromarray(np.zeros((80, 96), np.uint8)).save(classes / "masks" / "cat" / "cat1.png")
        return imgs + masks, "empty"
    if case == "one-image":
        return [classes / "images" / "cat" / "cat0.png"], "at least 2 images"
    if case == "classes-count":
        return imgs + masks + ["--classes", "cat,dog"], "2 names for 4 masks"
    if case == "classes-without-masks":
        return imgs + ["--classes", "cat,cat,dog,dog"], "add --masks"
    if case == "missing-mask":
        missing = ["--masks", tmp_path / "nope"]
        return imgs + masks[:2] + missing, "nope does not exist; check --masks"
    if case == "out-is-a-file":
        (tmp_path / "out").write_text("")
        return imgs, "is a file"
    return imgs + [tmp_path / "nope.png"], "nope.png does not exist"


@pytest.mark.parametrize("case", ["count", "size", "empty", "one-image", "classes-count",
                                  "classes-without-masks", "missing", "missing-mask",
                                  "out-is-a-file"])
def test_bad_input_is_one_line_and_writes_nothing(classes, tiny_model_args, tmp_path, case, capsys,
                                                  monkeypatch):
    args, fragment = _bad(classes, tmp_path, case)
    out = tmp_path / "out"
    code, _, err = run([*args, "--out", out, *tiny_model_args], capsys, monkeypatch)
    assert_one_line_error(code, err, fragment)
    assert not out.is_dir()

