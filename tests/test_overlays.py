"""Overlay pictures: class colours, outlines visible on any background, labels, size, speed-safe
drawing (no input changed), the output plan of overlays and review thumbnails."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from sansa_cli.core.prompts import Points
from sansa_cli.errors import UserInputError
from sansa_cli.predict import outputs
from sansa_cli.visualize import pictures as pic
from sansa_cli.visualize.overlays import (
    MAX_SIDE,
    MIN_PANEL,
    OverlayLayer,
    ReferenceGroup,
    prepare_references,
    render_overlay,
    render_thumbnail,
)
from tests.review_fixtures import photo_like


def _disc(height: int, width: int, cx: float, cy: float, r: float) -> np.ndarray:
    y, x = np.ogrid[0:height, 0:width]
    return (x - cx) ** 2 + (y - cy) ** 2 < r ** 2


def _luma(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(float) @ np.array([0.2126, 0.7152, 0.0722])


def test_class_colours_are_distinct_and_stable():
    colours = [np.array(pic.class_colour(k)) for k in range(20)]
    assert min(np.linalg.norm(a - b) for a, b in itertools.combinations(colours, 2)) > 45
    assert len({pic.class_colour(k) for k in range(60)}) == 60
    assert pic.class_colour(3) == pic.class_colour(3)
    assert pic.text_colour((255, 230, 0)) == (0, 0, 0)  # black on yellow
    assert pic.text_colour((20, 20, 140)) == (255, 255, 255)  # white on navy
    assert all(pic.luminance(pic.line_colour(k)) >= 0.3 for k in range(40))


@pytest.mark.parametrize("colour, index", [((255, 0, 0), 0), ((0, 255, 0), 2)])
def test_outline_shows_on_an_object_of_the_class_colour(colour, index):
    """A red object under the red class colour, on a red background (and the same in green):
    the tint changes nothing there, the two-tone outline must still show the edge."""
    assert pic.class_colour(index) == colour
    pixels = np.zeros((200, 200, 3), np.uint8)
    pixels[:] = colour
    mask = _disc(200, 200, 100, 100, 50)
    before = pixels.copy()
    pic.paint_masks(pixels, [mask], [index], widths=(2, 2))
    ring = pixels[100, 40:62]  # across the left edge, outside to inside
    luma = _luma(ring)
    assert luma.min() < 20 and luma.max() > 0.3 * 255  # a dark halo and a bright line
    assert (pixels[mask] == before[mask]).all(axis=1).mean() > 0.8  # the inside stays itself
    assert (pixels[10, 10] == before[10, 10]).all()  # far outside is untouched


def test_overlay_has_title_target_label_legend_and_references():
    image = photo_like(400, 300)
    layers = [OverlayLayer(_disc(300, 400, 120, 150, 60), "cat", 0, "predicted IoU 0.91"),
              OverlayLayer(_disc(300, 400, 300, 100, 40), "dog", 1, "predicted IoU 0.40")]
    refs = [ReferenceGroup("cat", 0, [(image, layers[0].mask, None)] * 3),
            ReferenceGroup("dog", 1, [(image, None, Points(((300.0, 100.0),)))])]
    prepared = prepare_references(refs, max_per_class=2)
    assert [len(g[2]) for g in prepared.groups] == [2, 1] and prepared.groups[0][3] == 3
    drawn = render_overlay(image, layers, "holiday/IMG_0001.jpg", prepared)
    untitled = render_overlay(image, layers, "", prepared)
    picture = np.asarray(drawn.picture)
    panel = drawn.target.size
    assert max(panel) >= MIN_PANEL and drawn.picture.height > panel[1] + 100  # bars and strip
    bar = drawn.origin[1]
    title_rows = picture[: bar - 4]
    assert (title_rows != np.asarray(untitled.picture)[: bar - 4]).any()  # the name is drawn
    assert (np.asarray(drawn.target) != picture[bar: bar + panel[1], : panel[0]]).any()  # tag
    below = picture[bar + panel[1]:]
    for k in (0, 1):  # each class's swatch/tags carry its colour below the target
        assert (below == pic.class_colour(k)).all(axis=-1).sum() > 50


def test_portrait_puts_references_right_and_landscape_below():
    for size in ((300, 500), (500, 300)):
        image = Image.new("RGB", size, (90, 90, 90))
        mask = np.zeros(size[::-1], bool)
        mask[50:100, 50:100] = True
        drawn = render_overlay(image, [OverlayLayer(mask, "object", 0)], "t.png",
                               [ReferenceGroup("object", 0, [(image, mask, None)])])
        right = drawn.picture.width - drawn.target.width
        assert (right > 100) == (size[1] > size[0])


def test_size_is_capped_for_large_targets_and_many_classes():
    image = Image.new("RGB", (3000, 2000), (200, 200, 200))
    masks = np.zeros((20, 2000, 3000), bool)
    for k in range(20):
        masks[k, 900:1100, 140 * k + 60: 140 * k + 180] = True
    layers = [OverlayLayer(masks[k], f"class {k} " * 4, k,
                           "predicted IoU 0.50  object 0.90  3 instances") for k in range(20)]
    drawn = render_overlay(image, layers, "x" * 500 + ".jpg")
    assert max(drawn.picture.size) <= MAX_SIDE
    tiny = render_overlay(Image.new("RGB", (40, 30)), [], "tiny.png")
    assert max(tiny.target.size) == MIN_PANEL


def test_write_overlay_is_a_small_jpeg_with_its_thumbnail(tmp_path):
    image = photo_like(2048, 1536)
    masks = [_disc(1536, 2048, 600, 500, 300), _disc(1536, 2048, 1400, 1000, 250),
             _disc(1536, 2048, 1000, 300, 150)]
    layers = [OverlayLayer(m, name, k, outputs.caption(0.9 - 0.2 * k, 0.95, 1))
              for k, (m, name) in enumerate(zip(masks, ("cat", "dog", "bicycle")))]
    reference = photo_like(640, 480, seed=2)
    prepared = prepare_references([ReferenceGroup(layer.label, layer.colour_index,
                                                  [(reference, masks[0][:480, :640], None)])
                                   for layer in layers])
    saved = (np.asarray(image).copy(), [m.copy() for m in masks], np.asarray(reference).copy())
    path, thumb = tmp_path / "t_overlay.jpg", tmp_path / "thumbnails" / "t.jpg"
    outputs.write_overlay(path, image, layers, "t.jpg", prepared, thumbnail=thumb)
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"
    with Image.open(path) as written, Image.open(thumb) as small:
        assert written.format == small.format == "JPEG"
        assert max(written.size) <= MAX_SIDE and max(small.size) == 320
    assert path.stat().st_size < 400_000 and thumb.stat().st_size < 40_000
    assert (np.asarray(image) == saved[0]).all() and (np.asarray(reference) == saved[2]).all()
    assert all((m == s).all() for m, s in zip(masks, saved[1]))
    alone = tmp_path / "alone.jpg"
    outputs.write_thumbnail(alone, image, layers)
    with Image.open(alone) as small:
        assert small.format == "JPEG" and max(small.size) == 320


def test_thumbnail_keeps_masks_visible_and_never_enlarges():
    image = Image.new("RGB", (200, 100), (40, 40, 40))
    mask = np.zeros((100, 200), bool)
    mask[20:80, 50:150] = True
    small = render_thumbnail(image, [OverlayLayer(mask, "object", 1)])
    assert small.size == (200, 100)
    assert (np.asarray(small) == pic.line_colour(1)).all(axis=-1).any()


def test_marked_reference_scales_its_prompt():
    image = Image.new("RGB", (800, 400), (0, 0, 0))
    drawn = pic.marked_reference(image, None, Points(((400.0, 200.0),), ((40.0, 40.0),)),
                                 side=200)
    assert drawn.size == (200, 100)
    assert tuple(np.asarray(drawn)[50, 100]) == (0, 255, 0)  # the click, scaled with the image
    assert tuple(np.asarray(drawn)[10, 10]) == (255, 40, 40)


def test_label_layers_follow_the_semantic_map():
    semantic = np.zeros((10, 12), np.uint8)
    semantic[2:5, 2:5], semantic[6:9, 6:9] = 1, 2
    result = SimpleNamespace(semantic=semantic, classes=[
        SimpleNamespace(name="cat", predicted_iou=0.8, object_score=None, instances=[1]),
        SimpleNamespace(name="dog", predicted_iou=0.3, object_score=0.9, instances=[1, 2])])
    layers = outputs.label_layers(result)
    assert [(layer.label, layer.colour_index, int(layer.mask.sum())) for layer in layers] == \
        [("cat", 0, 9), ("dog", 1, 9)]
    assert layers[1].caption == "predicted IoU 0.30  object 0.90  2 instances"


def test_thumbnail_paths_never_overwrite_inputs(tmp_path):
    targets = [tmp_path / "in" / "a.jpg", tmp_path / "in" / "sub" / "b.png"]
    out = tmp_path / "out"
    thumbs = outputs.review_paths(out, targets, targets)
    assert thumbs == {targets[0]: out / "thumbnails" / "a.jpg",
                      targets[1]: out / "thumbnails" / "b.jpg"}
    mirrored = outputs.review_paths(out, targets, targets, {targets[0]: "a", targets[1]: "sub/b"})
    assert mirrored[targets[1]] == out / "thumbnails" / "sub" / "b.jpg"
    for clash in (out / "index.html", out / "thumbnails" / "a.jpg"):
        with pytest.raises(UserInputError, match="overwrite an input"):
            outputs.review_paths(out, targets, [*targets, clash])
    with pytest.raises(UserInputError, match="would both be written"):
        outputs.review_paths(out, [targets[0], tmp_path / "x" / "a.png"], targets)
