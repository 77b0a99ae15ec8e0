"""What `sansa predict` writes besides masks: overlay pictures, review thumbnails (and their
paths), a JSON summary.

Files in ``OUT`` (the output plan itself is :func:`sansa_cli.predict.job.output_paths`):
``<stem>_overlay.jpg`` (``--overlay``; JPEG, longest side at most 1280 px,
see :mod:`sansa_cli.visualize.overlays`), ``index.html`` and ``thumbnails/<stem>.jpg``
(``--html``; see :mod:`sansa_cli.visualize.review_page`), ``predictions.json`` (``--json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PIL import Image

from sansa_cli.artifacts.files import finite_json, plan_outputs, write_bytes_atomic
from sansa_cli.visualize.overlays import (
    OverlayLayer,
    PreparedReferences,
    ReferenceGroup,
    render_overlay,
    render_thumbnail,
)
from sansa_cli.visualize.pictures import jpeg_bytes

THUMBNAILS = "thumbnails"  # the review page's thumbnails: OUT/thumbnails/<stem>.jpg
PAGE = "index.html"


def write_overlay(path: Path, image: Image.Image, layers: Sequence[OverlayLayer], title: str,
                  references: PreparedReferences | Sequence[ReferenceGroup] | None = None,
                  thumbnail: Path | None = None) -> None:
    """``<stem>_overlay.jpg``: the target (``image``, RGB) with each layer's mask tinted and
    outlined in its class colour, a legend, ``title`` (the target's file name) above, and the
    references (prepare them once per run with
    :func:`~sansa_cli.visualize.overlays.prepare_references`). With ``thumbnail``, the review
    thumbnail is cut from the same drawing and written there too."""
    picture = render_overlay(image, layers, title, references)
    write_bytes_atomic(path, picture.jpeg())
    if thumbnail is not None:
        write_bytes_atomic(thumbnail, picture.thumbnail_jpeg())


def write_thumbnail(path: Path, image: Image.Image, layers: Sequence[OverlayLayer]) -> None:
    """The review thumbnail alone (for runs without ``--overlay``): the target with its masks,
    longest side 320 px, JPEG."""
    write_bytes_atomic(path, jpeg_bytes(render_thumbnail(image, layers), quality=80))


def caption(predicted_iou: float, object_score: float | None = None,
            instances: int | None = None) -> str:
    """A layer's scores as the legend shows them."""
    parts = [f"predicted IoU {predicted_iou:.2f}"]
    if object_score is not None:
        parts.append(f"object {object_score:.2f}")
    if instances is not None:
        parts.append(f"{instances} instance{'' if instances == 1 else 's'}")
    return "  ".join(parts)


def reference_group(label: str, colour_index: int, memory) -> ReferenceGroup:
    """A class's references as the model saw them, from its ``ReferenceMemory`` (the loaded
    references and their masks: given, or drawn by SAM2 from a prompt)."""
    return ReferenceGroup(label, colour_index,
                          [(ref.image, mask, ref.prompt)
                           for ref, mask in zip(memory.references, memory.masks)])


def label_layers(result) -> list[OverlayLayer]:
    """One layer per class of a ``LabelResult``: the pixels its kept instances hold in the
    semantic map (what the label files say), captioned with its scores and instance count."""
    return [OverlayLayer(result.semantic == k + 1, cls.name, k,
                         caption(cls.predicted_iou, cls.object_score, len(cls.instances)))
            for k, cls in enumerate(result.classes)]


def write_json(path: Path, payload) -> None:
    """``payload`` as standard JSON (NaN and infinities as null)."""
    write_bytes_atomic(path, (finite_json(payload) + "\n").encode())


def review_paths(out_dir: Path, targets: list[Path], inputs: list[Path],
                 names: dict[Path, str] | None = None) -> dict[Path, Path]:
    """target -> ``OUT/thumbnails/<name>.jpg`` for ``--html`` (``names`` as for the masks:
    default the stem, ``a/b`` mirrors subfolders); refuses name clashes and overwriting an
    input, the page ``OUT/index.html`` included, before any work."""
    thumbs = {t: f"{THUMBNAILS}/{names[t] if names else t.stem}" for t in targets}
    plan = plan_outputs(out_dir, targets, ("",), inputs, extra=(PAGE,), names=thumbs,
                        extensions=(".jpg",))
    return {target: paths[0] for target, paths in plan.items()}
