"""The work behind ``sansa predict``: validate everything, then segment with a progress bar."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from sansa_cli.errors import UserInputError


@dataclass
class PredictJob:
    references: list[tuple[Path, object]]  # (image, mask path or prompt)
    targets: list[Path]
    out: Path | None = None
    overlay: bool = False
    json: bool = False
    adapters: str = "default"  # "default" | "none" | a file, as load_model takes it
    sam2: str | None = None
    sam2_checkpoint: Path | None = None
    device: str = "auto"
    precision: str = "fp32"
    batch_size: int | None = None  # None: the device's default (see load_model)
    allow_base_mismatch: bool = False
    input_profile: list[str] = field(default_factory=list)  # --input-profile values
    labels: object = None  # a predict.labelling.LabelOptions: classes, formats, instances


def check_targets(targets: list[Path], console) -> None:
    """Open every target's header now, so a broken file fails before any work is done; say
    that only the first frame of an animated (or multi-page) image is segmented."""
    from sansa_cli.core.images import frame_count

    for target in targets:
        frames = frame_count(target, "target")
        if frames > 1:
            console.print(f"warning: target {target} has {frames} frames (an animation or "
                          "pages); only its first frame is segmented", markup=False,
                          highlight=False, soft_wrap=True)


def check_out(out: Path, targets: list[Path], inputs: list[Path], overlay: bool) -> dict:
    """The output plan (see :func:`~sansa_cli.predict.outputs.output_paths`) once ``out`` is a
    writable folder that holds no target (its masks would be targets of the next run there)."""
    from sansa_cli.artifacts.files import check_output_dir
    from sansa_cli.predict.outputs import output_paths

    check_output_dir(out)
    plan = output_paths(out, targets, inputs, overlay)
    holding = next((t for t in targets if t.parent.resolve() == out.resolve()), None)
    if holding is not None:
        raise UserInputError(f"--out {out} is the folder of the target {holding}; masks written "
                             "there would be read as targets by the next run over it; choose "
                             f"another folder, e.g. {out / 'masks'}")
    return plan


def run_predict(job: PredictJob) -> None:
    """Run a prediction job end to end; writes nothing unless every input checks out.

    A target that fails to decode while segmenting (e.g. a truncated JPEG: its header was fine)
    stops the run there, with one line naming it and how many masks were written (those of the
    targets before it).
    """
    from rich.console import Console

    from sansa_cli.core.images import list_targets
    from sansa_cli.core.references import load_reference

    if job.labels is not None and job.labels.wanted():
        from sansa_cli.predict.labelling import run_labelling

        return run_labelling(job)
    console = Console(stderr=True)
    # fail fast, before any model is built; the loaded references are what the model encodes
    references = [load_reference(image, marking) for image, marking in job.references]
    targets = list_targets(job.targets)
    check_targets(targets, console)
    inputs = [p for pair in job.references for p in pair if isinstance(p, Path)] + targets
    if job.out is None and (job.overlay or job.json):
        raise UserInputError("--overlay and --json write files: add --out DIR")
    plan = check_out(job.out, targets, inputs, job.overlay) if job.out else {}
    _check_model_options(job)
    if job.out is None:  # said before the work, not after it
        console.print("warning: no --out given: the masks are computed and summarised but not "
                      "saved; add --out DIR to keep them", markup=False, highlight=False,
                      soft_wrap=True)
    with locked_out(job.out):
        _segment_all(job, references, targets, plan, console)


def _check_model_options(job: PredictJob) -> None:
    """The model's names and files, from their headers, before any warning or work."""
    from sansa_cli.artifacts.adapter_file import read_adapter_info
    from sansa_cli.core.assemble import base_spec

    info = None
    if str(job.adapters).lower() not in ("default", "none"):
        info = read_adapter_info(job.adapters)
    if job.sam2 is not None or info is not None:
        base_spec(job.sam2, info)


def locked_out(out: Path | None):
    """The output folder's lock for the run (nothing to lock without ``--out``)."""
    import contextlib

    from sansa_cli.artifacts.files import output_lock

    return output_lock(out) if out is not None else contextlib.nullcontext()


def _segment_all(job: PredictJob, references, targets, plan, console) -> None:
    from rich.console import Console

    from sansa_cli.api import load_model

    model = load_model(sam2=job.sam2, sam2_checkpoint=job.sam2_checkpoint,
                       adapters=job.adapters, device=job.device,
                       precision=job.precision, batch_size=job.batch_size,
                       allow_base_mismatch=job.allow_base_mismatch,
                       input_profile=job.input_profile)
    start = time.perf_counter()
    memory = model.encode_references(references)
    rows = _segment_with_progress(model, memory, targets, plan, job, console)
    summary = _summary(job, model, rows, time.perf_counter() - start)
    if job.json and job.out:
        from sansa_cli.predict.outputs import write_json

        write_json(job.out / "predictions.json", summary)
    _print_table(Console(), summary, job.out)


def _segment_with_progress(model, memory, targets, plan, job, console):
    from collections import deque

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from sansa_cli.artifacts.masks import write_mask
    from sansa_cli.core.images import load_image
    from sansa_cli.predict.outputs import write_overlay

    loaded: deque = deque()  # targets read but not yet written (at most one batch)
    rows = []  # the summary keeps a row per target, never its mask: memory stays flat

    def images():  # each file is read once, for the model and its picture
        for index, target in enumerate(targets):
            try:
                loaded.append(load_image(target))
            except UserInputError as exc:
                raise UserInputError(f"{exc}; stopped at target {index + 1} of {len(targets)}"
                                     f"{_written(len(rows), job.out)}") from exc
            yield loaded[-1]

    columns = (TextColumn("segmenting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("targets", total=len(targets))
        for target, result in zip(targets, model.segment(
                memory, images(), on_batch=lambda n: progress.update(task, advance=n))):
            image = loaded.popleft()
            result.source = str(target)
            if target in plan:
                mask_path, overlay_path = plan[target]
                write_mask(mask_path, result.mask)
                if overlay_path is not None:
                    write_overlay(overlay_path, image, result.mask, _caption(result), memory)
            rows.append(_target_row(target, result, job))
    return rows


def _written(count: int, out: Path | None) -> str:
    if out is None:
        return ""
    return f" (masks of the first {count} written to {out})" if count else " (no mask written)"


def _caption(result) -> str:
    text = f"predicted IoU {result.predicted_iou:.2f}"
    if result.object_score is not None:
        text += f"  object present {result.object_score:.2f}"
    return text


def adapter_record(model) -> dict:
    """Which adapter file made the predictions, its hash, and how inputs were fed."""
    import dataclasses

    from sansa_cli.artifacts.hashing import sha256_file

    path = model.adapter_file
    return {"adapter_file": None if path is None else str(Path(path).resolve()),
            "adapter_sha256": None if path is None else sha256_file(path),
            "input_profile": dataclasses.asdict(model.profile)}


def _target_row(target: Path, result, job) -> dict:
    """What predictions.json and the table keep of one target (not its mask)."""
    return {"image": str(target), "mask": f"{target.stem}.png" if job.out else None,
            "predicted_iou": round(result.predicted_iou, 4),
            "object_score": None if result.object_score is None
            else round(result.object_score, 4),
            "mask_area": result.area, "mask_fraction": round(result.area / result.mask.size, 4),
            "height": int(result.mask.shape[0]), "width": int(result.mask.shape[1]),
            "seconds": round(result.seconds, 4)}


def _summary(job, model, rows: list[dict], seconds: float) -> dict:
    return {
        "references": [{"image": str(i), "marking": str(m)} for i, m in job.references],
        "sam2": model.base_name,
        "adapters": getattr(model.strategy, "name", None),
        **adapter_record(model),
        "device": str(model.device),
        "precision": model.precision,
        "seconds_total": round(seconds, 3),
        "targets": rows,
    }


def _print_table(console, summary, out) -> None:
    from rich.table import Table

    rows = summary["targets"]
    table = Table(title=f"{len(rows)} targets in {summary['seconds_total']:.1f} s")
    for column in ("target", "predicted IoU", "present", "area %"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for row in rows[:20]:
        score = "-" if row["object_score"] is None else f"{row['object_score']:.2f}"
        table.add_row(Path(row["image"]).name, f"{row['predicted_iou']:.2f}", score,
                      f"{100 * row['mask_fraction']:.1f}")
    if len(rows) > 20:
        table.caption = f"... and {len(rows) - 20} more"
    console.print(table)
    if out:
        console.print(f"masks written to {out}")
