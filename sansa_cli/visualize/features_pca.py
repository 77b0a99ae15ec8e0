"""PCA pictures of SAM2 image-encoder features: do (adapted) features group by category?

The stride-16 feature map (the one memory attention reads) of every image is computed; one PCA
is fitted jointly over all images' feature vectors, so a colour means the same thing in every
picture. Its first three components become RGB (each clipped to its 1st..99th percentile). With
masks, each object's mean feature is projected on the first two components (the red and green
axes of the pictures) and drawn as a scatter coloured by class. Frozen SAM2 and an adapted
model each get their own PCA; their pictures are put side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from sansa_cli.core.images import ImageLike, load_image, load_mask
from sansa_cli.errors import MissingFileError, UserInputError
from sansa_cli.visualize.pictures import png_bytes

PANEL = 256  # longer side of each picture panel, in pixels
GAP, TITLE = 4, 18  # between panels; title bar above them
BACKGROUND, INK = (24, 24, 24), (235, 235, 235)
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


@dataclass
class FeaturePCA:
    """A PCA of feature vectors and the range each component is coloured over."""

    mean: torch.Tensor  # [C]
    components: torch.Tensor  # [C, k], unit columns, by decreasing variance
    low: torch.Tensor  # [k] 1st percentile of each component over the fitted vectors
    high: torch.Tensor  # [k] 99th percentile
    explained: torch.Tensor  # [k] fraction of the total variance

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """[..., C] -> [..., k]."""
        return (x.double() - self.mean) @ self.components

    def to_rgb(self, x: torch.Tensor) -> np.ndarray:
        """[..., C] -> uint8 [..., 3]: the first three components scaled to 0..255."""
        z = self.project(x)[..., :3]
        span = (self.high[:3] - self.low[:3]).clamp_min(1e-12)
        return ((z - self.low[:3]) / span).clamp(0, 1).mul(255).round().byte().numpy()


def fit_pca(vectors: Sequence[torch.Tensor], k: int = 3, percentiles=(1.0, 99.0)) -> FeaturePCA:
    """Fit one PCA over all rows of ``vectors`` (a list of [M_i, C] tensors).

    Eigen-decomposition of the covariance in float64, accumulated per tensor (memory stays at
    one tensor); each component's sign is fixed (largest loading positive) so that colours do
    not flip between runs or platforms.
    """
    count = sum(v.shape[0] for v in vectors)
    if count < 2:
        raise UserInputError(f"a PCA needs at least 2 feature vectors, got {count}; add images")
    mean = sum(v.double().sum(0) for v in vectors) / count
    cov = sum((v.double() - mean).T @ (v.double() - mean) for v in vectors) / (count - 1)
    values, vecs = torch.linalg.eigh(cov)  # ascending
    values, vecs = values.flip(0)[:k], vecs.flip(1)[:, :k]
    signs = torch.sign(vecs.gather(0, vecs.abs().argmax(0, keepdim=True)))
    vecs = vecs * torch.where(signs == 0, 1.0, signs)
    pca = FeaturePCA(mean, vecs, mean.new_zeros(k), mean.new_ones(k),
                     values.clamp_min(0) / cov.trace().clamp_min(1e-12))
    z = torch.cat([pca.project(v) for v in vectors]).numpy()
    low, high = np.percentile(z, percentiles, axis=0)
    pca.low, pca.high = torch.from_numpy(low), torch.from_numpy(high)
    return pca


def encode_features(model, images: Sequence[ImageLike],
                    on_batch: Callable[[int], None] | None = None) -> torch.Tensor:
    """Stride-16 image-encoder features of every image: float32 [N, h, w, C] on the CPU, from
    the model's own batched encoder (its resize, batch size and precision)."""
    frames = model.encode_images([load_image(img) for img in images], on_batch)
    (h, w), feats = frames.feat_sizes[-1], frames.vision_feats[-1]  # (HW, N, C)
    return feats.float().permute(1, 0, 2).reshape(len(images), h, w, -1).cpu()


def object_means(features: torch.Tensor, masks: Sequence[ImageLike]) -> torch.Tensor:
    """Each object's mean feature [N, C]: features [N, h, w, C] weighted by the fraction of
    each feature cell its mask covers (the image was square-resized, so the mask is too).
    Masks are loaded one at a time (paths, arrays or PIL images)."""
    means = []
    for feats, mask in zip(features, masks):
        m = torch.from_numpy(load_mask(mask).astype(np.float32))[None, None]
        weight = F.adaptive_avg_pool2d(m, feats.shape[:2])[0, 0]  # [h, w]
        means.append((feats * weight[..., None]).sum((0, 1)) / weight.sum().clamp_min(1e-12))
    return torch.stack(means)


def panel_size(width: int, height: int) -> tuple[int, int]:
    """A panel keeps the image's aspect with its longer side ``PANEL`` pixels."""
    scale = PANEL / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def compose_picture(image: Image.Image, maps: Sequence[np.ndarray], titles: Sequence[str]
                    ) -> Image.Image:
    """Columns ``image | map...``, each panel at :func:`panel_size`, titles above.

    A map [h, w, 3] covers the square-resized image, so stretching it back to the image's
    aspect (nearest neighbour: one flat block per feature cell) puts each cell over its pixels.
    """
    pw, ph = panel_size(*image.size)
    panels = [image.convert("RGB").resize((pw, ph), Image.BICUBIC)]
    panels += [Image.fromarray(m).resize((pw, ph), Image.NEAREST) for m in maps]
    picture = Image.new("RGB", (len(panels) * pw + (len(panels) - 1) * GAP, ph + TITLE),
                        BACKGROUND)
    for i, (panel, title) in enumerate(zip(panels, ["image", *titles])):
        strip = Image.new("RGB", (pw, TITLE), BACKGROUND)  # a long title is cut at its panel
        ImageDraw.Draw(strip).text((3, 3), title, fill=INK)
        picture.paste(strip, (i * (pw + GAP), 0))
        picture.paste(panel, (i * (pw + GAP), TITLE))
    return picture


def _marker(draw: ImageDraw.ImageDraw, x: float, y: float, class_index: int, r: int = 5) -> None:
    colour = PALETTE[class_index % len(PALETTE)]
    shape = class_index // len(PALETTE) % 3  # beyond 10 classes, colours repeat with new shapes
    box = (x - r, y - r, x + r, y + r)
    if shape == 0:
        draw.ellipse(box, fill=colour, outline=INK)
    elif shape == 1:
        draw.rectangle(box, fill=colour, outline=INK)
    else:
        draw.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=colour, outline=INK)


def _plot(draw, origin: tuple[int, int], size: int, points: np.ndarray, labels: list[int],
          title: str) -> None:
    """One scatter panel: ``points`` [N, 2] inside a ``size``-pixel square at ``origin``."""
    ox, oy = origin
    draw.text((ox, oy), title, fill=INK)
    left, top, side = ox + 12, oy + TITLE, size - 24
    draw.rectangle((left, top, left + side, top + side), outline=(90, 90, 90))
    low, high = points.min(0), points.max(0)
    pad = np.maximum((high - low) * 0.08, 1e-6)
    low, span = low - pad, (high - low) + 2 * pad
    for (px, py), label in zip(points, labels):
        x = left + (px - low[0]) / span[0] * side
        y = top + side - (py - low[1]) / span[1] * side  # PC2 grows upwards
        _marker(draw, x, y, label)
    draw.text((left + side - 24, top + side + 3), "PC1", fill=INK)
    draw.text((left + 4, top + 3), "PC2", fill=INK)


def scatter_picture(points: Sequence[np.ndarray], classes: Sequence[str], titles: Sequence[str],
                    size: int = 320) -> Image.Image:
    """Scatter panels (one per model, points [N, 2]) side by side, then a legend of classes."""
    names = list(dict.fromkeys(classes))  # class order of first appearance
    labels = [names.index(c) for c in classes]
    legend_width = 24 + 6 * max(len(n) for n in names)
    height = max(size + TITLE + 16, 16 * len(names) + 24)
    picture = Image.new("RGB", (len(points) * (size + GAP) + legend_width, height), BACKGROUND)
    draw = ImageDraw.Draw(picture)
    for i, (pts, title) in enumerate(zip(points, titles)):
        _plot(draw, (i * (size + GAP) + 4, 4), size, pts, labels, title)
    x = len(points) * (size + GAP)
    for j, name in enumerate(names):
        _marker(draw, x + 8, 28 + 16 * j, j)
        draw.text((x + 18, 22 + 16 * j), name, fill=INK)
    return picture


def _class_names(mask_paths: list[Path], classes: str | None) -> list[str]:
    if classes is None:  # the images/<class>/, masks/<class>/ layout
        return [p.parent.name or "object" for p in mask_paths]
    names = [c.strip() for c in classes.split(",")]
    if len(names) != len(mask_paths) or not all(names):
        raise UserInputError(
            f"--classes lists {len(names)} names for {len(mask_paths)} masks; give one "
            "non-empty class name per mask, comma-separated, in the masks' order")
    return names


def _check_inputs(targets: list[Path], mask_paths: list[Path] | None) -> list[Image.Image]:
    """Read every image (and mask) once before any model is built; returns panel thumbnails."""
    from sansa_cli.core.images import reference_pair

    if len(targets) < 2:
        raise UserInputError(f"a feature PCA needs at least 2 images, got {len(targets)}; "
                             "add more images (files or folders)")
    if mask_paths is not None and len(mask_paths) != len(targets):
        raise UserInputError(f"got {len(mask_paths)} masks for {len(targets)} images; give one "
                             "mask per image, in the same order as the images")
    thumbs = []
    for i, target in enumerate(targets):
        img = reference_pair(target, mask_paths[i])[0] if mask_paths else load_image(target)
        thumbs.append(img.resize(panel_size(*img.size), Image.BICUBIC))
    return thumbs


@dataclass
class FeatureView:
    """One model's view of the images: RGB maps [h, w, 3] and object points [N, 2] (or None)."""

    title: str
    maps: list[np.ndarray]
    points: np.ndarray | None
    explained: list[float]  # % of variance in PC1-2 and PC1-3


def analyse(model, title: str, images: Sequence[ImageLike], masks=None,
            on_batch: Callable[[int], None] | None = None) -> FeatureView:
    """Encode ``images``, fit one PCA over all their features, colour and (with masks) place
    each object on PC1/PC2."""
    feats = encode_features(model, images, on_batch)
    pca = fit_pca([f.reshape(-1, f.shape[-1]) for f in feats])
    points = pca.project(object_means(feats, masks))[:, :2].numpy() if masks else None
    return FeatureView(title, [pca.to_rgb(f) for f in feats], points,
                       [100 * float(pca.explained[:k].sum()) for k in (2, 3)])


def _pictures(views: list[FeatureView], thumbs, plan, names, out: Path) -> dict[Path, bytes]:
    titles = [f"{v.title} (PC1-3: {v.explained[1]:.0f}%)" for v in views]
    pictures = {dest: png_bytes(compose_picture(thumbs[i], [v.maps[i] for v in views], titles))
                for i, dest in enumerate(plan.values())}
    if names:
        pictures[out / "scatter.png"] = png_bytes(scatter_picture(
            [v.points for v in views], names,
            [f"{v.title} (PC1-2: {v.explained[0]:.0f}%)" for v in views]))
    return pictures


def _checked_inputs(images, out: Path, masks, classes):
    """(targets, mask paths or None, class names, thumbnails, output plan), every input and
    ``out`` checked before any model is built."""
    from sansa_cli.artifacts.files import check_output_dir, plan_outputs
    from sansa_cli.core.images import list_targets

    check_output_dir(out)
    targets = list_targets(list(images))
    missing = [m for m in masks or [] if not Path(m).exists()]
    if missing:
        raise MissingFileError(f"mask {missing[0]} does not exist; check --masks")
    mask_paths = list_targets(list(masks)) if masks else None
    if classes is not None and mask_paths is None:
        raise UserInputError("--classes names the masks' classes: add --masks")
    names = _class_names(mask_paths, classes) if mask_paths else []
    thumbs = _check_inputs(targets, mask_paths)
    plan = {target: paths[0] for target, paths in plan_outputs(
        out, targets, ("_pca",), targets + (mask_paths or []), extra=("scatter.png",)).items()}
    return targets, mask_paths, names, thumbs, plan


def visualize_features(images: Sequence[str | Path], out: str | Path,
                       masks: Sequence[str | Path] | None = None, classes: str | None = None,
                       adapters: str | Path | None = None, sam2: str | None = None,
                       checkpoint: str | Path | None = None, device: str = "auto",
                       precision: str = "fp32", batch_size: int | None = None,
                       input_profile: list[str] | None = None) -> list[Path]:
    """Write ``<stem>_pca.png`` per image (columns: image | frozen | adapted) and, with masks,
    ``scatter.png`` to ``out``; returns the written paths. ``input_profile`` changes the first
    model's profile (see :func:`sansa_cli.api.load_model`); the frozen model sees the same
    pixels. Every input is checked before any
    model is built, nothing is written unless all the work succeeded, and ``out`` is locked
    against a second run for the duration (see :func:`sansa_cli.artifacts.files.output_lock`)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from sansa_cli.api import load_model
    from sansa_cli.artifacts.adapter_file import read_adapter_info
    from sansa_cli.artifacts.files import output_lock, write_bytes_atomic

    out = Path(out)
    targets, mask_paths, names, thumbs, plan = _checked_inputs(images, out, masks, classes)
    info = read_adapter_info(adapters) if adapters is not None else None
    runs = [("frozen SAM2", sam2, None)]  # (title, --sam2, adapters)
    if info is not None:  # the adapted model first: its file is checked before the long work
        runs = [(f"adapted {info.strategy}", sam2, adapters),
                ("frozen SAM2", sam2 or info.base_model, None)]
    views, profile = [], input_profile
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with output_lock(out), Progress(*columns, console=Console(stderr=True),
                                    transient=True) as progress:
        for title, base, adapter_file in runs:  # one model in memory at a time
            model = load_model(sam2=base, sam2_checkpoint=checkpoint,
                               adapters="none" if adapter_file is None else adapter_file,
                               device=device, precision=precision, batch_size=batch_size,
                               input_profile=profile)
            profile = model.profile  # the frozen model sees the pixels the adapted one saw
            task = progress.add_task(f"encoding ({title})", total=len(targets))
            views.insert(0, analyse(model, title, targets, mask_paths,
                                    lambda n, t=task: progress.update(t, advance=n)))
            del model
        pictures = _pictures(views, thumbs, plan, names, out)  # frozen first, then adapted
        task = progress.add_task("writing", total=len(pictures))
        for dest, data in pictures.items():
            write_bytes_atomic(dest, data)
            progress.update(task, advance=1)
    return list(pictures)
