"""Pictures and review items for the overlay and review-page tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from sansa_cli.visualize.review_page import ReviewClass, ReviewItem

#: display names a page must show as text: they close the script, open tags, break URLs
HOSTILE_NAMES = ('</script><script>document.title="pwned"</script>.png',
                 "<img src=x onerror=\"document.title='pwned'\">.jpg",
                 "a b#1?&amp;%20.png")


def photo_like(width: int, height: int, seed: int = 0) -> Image.Image:
    """A stand-in for a photo: smooth colour gradients, filled shapes and mild sensor noise
    (pure noise would compress like no photo does)."""
    rng = np.random.default_rng(seed)
    y, x = np.ogrid[0:height, 0:width]
    x, y = x / max(width, height), y / max(width, height)
    channels = (120 + 80 * np.sin(3 * x + 1) + 0 * y, 140 + 60 * np.cos(2 * y) + 0 * x,
                100 + 50 * np.sin(4 * x * y + 2))
    picture = Image.fromarray(np.stack(channels, -1).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for _ in range(25):
        cx, cy = rng.integers(0, width), rng.integers(0, height)
        r = int(rng.integers(2, max(width, height) // 6 + 3))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r),
                     fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    noise = rng.integers(-6, 7, (height, width, 3), dtype=np.int16)
    return Image.fromarray((np.asarray(picture, np.int16) + noise).clip(0, 255).astype(np.uint8))


def review_items(folder: Path, count: int = 30, hostile: bool = True) -> list[ReviewItem]:
    """``count`` items with distinct scores and areas, thumbnails written under
    ``folder/thumbnails``; every fifth has nothing found, the first ones have hostile names."""
    (folder / "thumbnails").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    names = [*(HOSTILE_NAMES if hostile else ()), *(f"img_{i:03d}.jpg" for i in range(count))]
    items = []
    for i, name in enumerate(names[:count]):
        thumbnail = f"thumbnails/{i:03d} {name.replace('/', '_')}.jpg"
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(
            folder / thumbnail, "JPEG")
        classes = [] if i % 5 == 4 else [
            ReviewClass("cat", round(0.05 + 0.9 * ((i * 37) % count) / count, 4),
                        round(0.01 * (i % 9 + 1), 4), 0),
            ReviewClass("dog & <b>friends</b>", 0.99, 0.02 * (i % 2), 1)]
        items.append(ReviewItem(name, thumbnail, thumbnail, classes))
    return items
