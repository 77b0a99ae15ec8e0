"""``sansa predict``: masks for new images from one or a few marked references."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sansa_cli.cli import options as opt


def predict(
    ref_image: Annotated[Path, typer.Argument(
        help="Reference image (with --references: the first target).", show_default=False)],
    mask_and_targets: Annotated[Optional[list[Path]], typer.Argument(
        metavar="[REF_MASK] TARGET...",
        help="The reference's mask (non-zero = object), then target images or folders. Leave the "
        "mask out when --points, --box or --scribble marks the reference, and with "
        "--references.", show_default=False)] = None,
    points: Annotated[Optional[str], typer.Option(
        "--points", help="Clicks on the object in the reference: 'x,y;x,y' (pixels).",
        show_default=False)] = None,
    neg_points: Annotated[Optional[str], typer.Option(
        "--neg-points", help="Clicks on the background: 'x,y;x,y'.", show_default=False)] = None,
    box: Annotated[Optional[str], typer.Option(
        "--box", help="A box around the object: x0,y0,x1,y1.", show_default=False)] = None,
    scribble: Annotated[Optional[Path], typer.Option(
        "--scribble", help="Strokes drawn on the object (an image of the reference's size, "
        "non-zero = stroke).", show_default=False)] = None,
    ref: Annotated[Optional[list[Path]], typer.Option(
        "--ref", help="More references for K-shot: --ref IMAGE MARKING (repeatable); MARKING is "
        "a mask file, box:x0,y0,x1,y1, points:x,y;x,y or scribble:FILE.",
        show_default=False)] = None,
    ref_markings: Annotated[Optional[list[str]], typer.Option("--ref-mask", hidden=True)] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Folder for <stem>.png masks (0/255, original size).",
        show_default=False)] = None,
    overlay: Annotated[bool, typer.Option(
        "--overlay", help="Also write <stem>_overlay.jpg pictures: the target with each class's "
        "mask tinted and outlined, a legend, and the marked references.")] = False,
    html: Annotated[bool, typer.Option(
        "--html", help="Also write OUT/index.html, a page of thumbnails with class, score and "
        "area per target, sortable by score, to review the run in a browser.")] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue a run into the same --out: skip targets whose outputs an "
        "earlier run finished (and are whole), redo the rest; summaries cover all.")] = False,
    recursive: Annotated[bool, typer.Option(
        "--recursive", "-r", help="Walk subfolders of target folders (not --out; not hidden "
        "ones) and mirror their paths under --out.")] = False,
    onnx: Annotated[Optional[Path], typer.Option(
        "--onnx", help="Run an ONNX export (from sansa export-onnx) with onnxruntime instead of "
        "PyTorch; the export fixes the model, so --adapters, --sam2, --device and --precision "
        "do not apply.", show_default=False)] = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", help="Threads reading targets ahead and writing outputs behind the model "
        "(0: none; default: one per CPU core, at most 4). Outputs do not depend on it.",
        show_default=False)] = None,
    json_summary: Annotated[bool, typer.Option(
        "--json", help="Also write predictions.json (scores, mask area, timing).")] = False,
    adapters: opt.AdaptersOrDefault = None,
    sam2: opt.Sam2 = None,
    sam2_checkpoint: opt.Sam2Checkpoint = None,
    device: opt.DeviceOpt = opt.Device.auto,
    precision: opt.PrecisionOpt = opt.Precision.auto,
    batch_size: opt.BatchSize = None,
    allow_base_mismatch: opt.AllowBaseMismatch = False,
    input_profile: opt.InputProfileOpt = None,
    references: Annotated[Optional[Path], typer.Option(
        "--references", help="Several classes: a YAML class list (classes: [{name, references: "
        "[{image, mask|box|points|scribble}]}]) or a COCO instances JSON (with "
        "--reference-images); every positional path is then a target.",
        show_default=False)] = None,
    reference_images: Annotated[Optional[Path], typer.Option(
        "--reference-images", help="The folder a COCO references file's file_names are "
        "relative to; its annotated images are not labelled again.", show_default=False)] = None,
    max_references: Annotated[Optional[int], typer.Option(
        "--max-references", help="References per class at most (COCO: the images where the "
        "class covers the most pixels; YAML: the first N).", show_default=False)] = None,
    label_format: Annotated[str, typer.Option(
        "--format", help="Comma list of png (one class: 0/255 masks; several: palette PNGs + "
        "classes.txt), coco (coco.json), yolo (yolo/labels, data.yaml), labelstudio "
        "(labelstudio.json).")] = "png",
    polygons: Annotated[bool, typer.Option(
        "--polygons", help="coco and labelstudio: exact polygons instead of RLE / brush masks "
        "(needs OpenCV: pip install 'sansa-cli\\[labels]').")] = False,
    min_area: Annotated[int, typer.Option(
        "--min-area", help="Drop instances (connected parts) smaller than this, in pixels.")] = 0,
    min_score: Annotated[float, typer.Option(
        "--min-score", help="Drop instances scoring below this (0..1; see the README on "
        "choosing it): an absent class then writes nothing.")] = 0.0,
    image_url_prefix: Annotated[Optional[str], typer.Option(
        "--image-url-prefix", help="labelstudio: image URLs are this prefix + the file name "
        "(default: Label Studio local-file URLs).", show_default=False)] = None,
    class_name: Annotated[str, typer.Option(
        "--class-name", help="The class's name in label files, for one class given on the "
        "command line.")] = "object",
) -> None:
    """Segment the object marked in the reference(s) in every target image.

    Examples: sansa predict ref.jpg ref_mask.png photos/ --out masks/ --overlay --html ;
    sansa predict ref.jpg photos/ --box 40,30,220,200 --out masks/ --recursive --resume

    Every input is checked before the model is built. A target that only fails while being
    segmented (a truncated JPEG: its header is fine) stops the run there, naming it and how many
    targets were finished; --resume then continues. An animated image (GIF, APNG, WebP) is
    segmented on its first frame, with a warning. Images above SANSA_MAX_PIXELS pixels (default
    178956970) are refused. Two runs cannot write one --out at once, and --out may not be a
    folder that holds targets.
    """
    from sansa_cli.predict.job import PredictJob, run_predict
    from sansa_cli.predict.labelling import LabelOptions, parse_formats

    labels = LabelOptions(references, reference_images, max_references,
                          parse_formats(label_format), polygons, min_area, min_score,
                          image_url_prefix, class_name)
    if references is not None:
        _no_command_line_references(points, box, scribble, ref)
        refs, targets = [], [ref_image, *(mask_and_targets or [])]
    else:
        first, targets = _first_reference(ref_image, mask_and_targets or [], points, neg_points,
                                          box, scribble)
        refs = [first] + _pairs(ref or [], ref_markings or [])
    if onnx is not None:
        _onnx_fixes_the_model(adapters, sam2, sam2_checkpoint, device, precision,
                              allow_base_mismatch)
    run_predict(PredictJob(
        references=refs, targets=targets, out=out, labels=labels,
        overlay=overlay, json=json_summary, adapters=adapters or "default", sam2=sam2,
        sam2_checkpoint=sam2_checkpoint, device=device.value, precision=precision.value,
        batch_size=batch_size, allow_base_mismatch=allow_base_mismatch,
        input_profile=list(input_profile or []), workers=workers, resume=resume,
        recursive=recursive, html=html, onnx=onnx,
    ))


def _onnx_fixes_the_model(adapters, sam2, checkpoint, device, precision, mismatch) -> None:
    """Refuse model options with ``--onnx`` (the export fixes the model), naming them."""
    from sansa_cli.errors import UserInputError

    given = [flag for flag, value in (("--adapters", adapters), ("--sam2", sam2),
                                      ("--sam2-checkpoint", checkpoint),
                                      ("--allow-base-mismatch", mismatch or None))
             if value is not None]
    given += [f"--{name} {value.value}" for name, value in (("device", device),
                                                            ("precision", precision))
              if value.value != "auto"]
    if given:
        raise UserInputError(f"--onnx runs the model its export fixed: drop {', '.join(given)} "
                             "(export again with sansa export-onnx to change it)")


def _first_reference(image, rest, points, neg_points, box, scribble):
    """(reference, targets): the marking is a prompt option when one is given, else the first
    positional path."""
    from sansa_cli.core.prompts import Points, Scribble, parse_box, parse_points
    from sansa_cli.errors import UserInputError

    given = [name for name, value in (("--points", points), ("--box", box),
                                      ("--scribble", scribble)) if value is not None]
    if len(given) > 1:
        raise UserInputError(f"mark the reference one way: {' and '.join(given)} were both given")
    if neg_points is not None and points is None:
        raise UserInputError("--neg-points needs --points (at least one click on the object)")
    if given:
        marking = (Points(parse_points(points), parse_points(neg_points) if neg_points else ())
                   if points is not None else parse_box(box) if box is not None
                   else Scribble(scribble))
        targets = rest
    elif len(rest) == 1 or rest[0].is_dir():
        raise UserInputError(f"the reference {image} has no mask: give its mask after it (sansa "
                             "predict REF REF_MASK TARGET...) or mark it with --points, --box or "
                             "--scribble")
    else:
        marking, targets = rest[0], rest[1:]
    if not targets:
        raise UserInputError("no target given; add target images or folders after the reference")
    return (image, marking), targets


def _pairs(images: list[Path], markings: list[str]) -> list[tuple]:
    from sansa_cli.core.prompts import parse_marking
    from sansa_cli.errors import UserInputError

    if len(images) != len(markings):
        raise UserInputError("each --ref takes two values: --ref IMAGE MASK")
    return [(image, parse_marking(marking)) for image, marking in zip(images, markings)]


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


def _no_command_line_references(points, box, scribble, ref) -> None:
    from sansa_cli.errors import UserInputError

    given = [name for name, value in (("--points", points), ("--box", box),
                                      ("--scribble", scribble), ("--ref", ref)) if value]
    if given:
        raise UserInputError(f"--references FILE gives every class's references; drop "
                             f"{', '.join(given)} (or drop --references)")
