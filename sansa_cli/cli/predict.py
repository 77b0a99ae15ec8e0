"""``sansa predict``: masks for new images from one or a few marked references."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sansa_cli.cli import options as opt


def predict(
    ref_image: Annotated[Path, typer.Argument(help="Reference image.", show_default=False)],
    ref_mask: Annotated[Path, typer.Argument(help="Mask of the object in the reference image "
                                             "(non-zero = object).", show_default=False)],
    targets: Annotated[list[Path], typer.Argument(help="Target images or folders of images.",
                                                  show_default=False)],
    ref: Annotated[Optional[list[Path]], typer.Option(
        "--ref", help="More references for K-shot: --ref IMAGE MASK (repeatable).",
        show_default=False)] = None,
    ref_masks: Annotated[Optional[list[Path]], typer.Option("--ref-mask", hidden=True)] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Folder for <stem>.png masks (0/255, original size).",
        show_default=False)] = None,
    overlay: Annotated[bool, typer.Option(
        "--overlay", help="Also write <stem>_overlay.png pictures.")] = False,
    json_summary: Annotated[bool, typer.Option(
        "--json", help="Also write predictions.json (scores, mask area, timing).")] = False,
    adapters: opt.AdaptersOrDefault = None,
    sam2: opt.Sam2 = None,
    sam2_checkpoint: opt.Sam2Checkpoint = None,
    device: opt.DeviceOpt = opt.Device.auto,
    precision: opt.PrecisionOpt = opt.Precision.fp32,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1,
                                            help="Targets per image-encoder batch.")] = 4,
    allow_base_mismatch: opt.AllowBaseMismatch = False,
) -> None:
    """Segment the object marked in the reference(s) in every target image.

    Example: sansa predict ref.jpg ref_mask.png photos/ --out masks/ --overlay
    """
    from sansa_cli.predict_job import PredictJob, run_predict

    references = [(ref_image, ref_mask)] + _pairs(ref or [], ref_masks or [])
    run_predict(PredictJob(
        references=references, targets=targets, out=out, overlay=overlay, json=json_summary,
        adapters=adapters, sam2=sam2, sam2_checkpoint=sam2_checkpoint, device=device.value,
        precision=precision.value, batch_size=batch_size,
        allow_base_mismatch=allow_base_mismatch,
    ))


def _pairs(images: list[Path], masks: list[Path]) -> list[tuple[Path, Path]]:
    from sansa_cli.errors import UserInputError

    if len(images) != len(masks):
        raise UserInputError("each --ref takes two values: --ref IMAGE MASK")
    return list(zip(images, masks))


def expand_ref_pairs(argv: list[str]) -> list[str]:
    """Rewrite ``--ref IMAGE MASK`` into ``--ref IMAGE --ref-mask MASK`` (typer options take
    one value per occurrence)."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == "--ref" and i + 2 < len(argv):
            out += ["--ref", argv[i + 1], "--ref-mask", argv[i + 2]]
            i += 3
        else:
            out.append(argv[i])
            i += 1
    return out
