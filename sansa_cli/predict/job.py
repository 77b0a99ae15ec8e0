"""The work behind ``sansa predict``: validate everything, then segment with a progress bar."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from sansa_cli.errors import UserInputError
from sansa_cli.predict.pipeline import Stages


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
    workers: int | None = None  # threads reading ahead and writing behind; None: per CPU
    resume: bool = False  # skip targets a previous run into --out finished
    recursive: bool = False  # walk subfolders of target folders, mirror them under --out
    html: bool = False  # OUT/index.html, a page to review the run
    onnx: Path | None = None  # an ONNX export (sansa export-onnx): run it without torch


def output_paths(out_dir: Path, targets: list[Path], inputs: list[Path], overlays: bool,
                 names: dict[Path, str] | None = None) -> dict[Path, tuple[Path, Path | None]]:
    """target -> (mask path, overlay path or None); refuses name clashes and overwriting any
    input (see :func:`~sansa_cli.artifacts.files.plan_outputs`)."""
    from sansa_cli.artifacts.files import plan_outputs

    suffixes, extensions = (("", "_overlay"), (".png", OVERLAY_EXTENSION)) if overlays \
        else (("",), (".png",))
    plan = plan_outputs(out_dir, targets, suffixes, inputs, names=names, extensions=extensions)
    return {target: (paths[0], paths[1] if overlays else None) for target, paths in plan.items()}


OVERLAY_EXTENSION = ".jpg"


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


def check_out(out: Path, targets: list[Path], inputs: list[Path], overlay: bool,
              names: dict[Path, str] | None = None) -> dict:
    """The output plan (see :func:`output_paths`) once ``out`` is a
    writable folder that holds no target (its masks would be targets of the next run there)."""
    from sansa_cli.artifacts.files import check_output_dir

    check_output_dir(out)
    plan = output_paths(out, targets, inputs, overlay, names)
    holding = next((t for t in targets if t.parent.resolve() == out.resolve()), None)
    if holding is not None:
        raise UserInputError(f"--out {out} is the folder of the target {holding}; masks written "
                             "there would be read as targets by the next run over it; choose "
                             f"another folder, e.g. {out / 'masks'}")
    return plan


def run_predict(job: PredictJob) -> None:
    """Run a prediction job end to end; writes nothing unless every input checks out.

    Targets are read ahead and outputs written behind the model in worker threads
    (:mod:`sansa_cli.predict.pipeline`); every finished target is recorded in the output
    folder's journal (:mod:`sansa_cli.predict.journal`), which ``--resume`` continues from. A
    target that fails to decode while segmenting (e.g. a truncated JPEG: its header was fine)
    stops the run there, with one line naming it and how many targets were finished.
    """
    from rich.console import Console

    from sansa_cli.core.references import load_reference

    if job.labels is not None and job.labels.wanted():
        from sansa_cli.predict.labelling import run_labelling

        return run_labelling(job)
    console = Console(stderr=True)
    check_run_options(job)
    # fail fast, before any model is built; the loaded references are what the model encodes
    references = [load_reference(image, marking) for image, marking in job.references]
    targets, names = find_targets(job, console)
    check_targets(targets, console)
    inputs = [p for pair in job.references for p in pair if isinstance(p, Path)] + targets
    if job.out is None and (job.overlay or job.json):
        raise UserInputError("--overlay and --json write files: add --out DIR")
    plan = check_out(job.out, targets, inputs, job.overlay, names) if job.out else {}
    thumbs = review_thumbnails(job, targets, inputs, names)
    _check_model_options(job)
    if job.out is None:  # said before the work, not after it
        console.print("warning: no --out given: the masks are computed and summarised but not "
                      "saved; add --out DIR to keep them", markup=False, highlight=False,
                      soft_wrap=True)
    with locked_out(job.out):
        journal = open_journal(job, run_settings(job))
        try:
            _segment_all(job, references, targets, names, (plan, thumbs), journal, console)
        finally:
            if journal is not None:
                journal.close()


def check_run_options(job) -> None:
    """The options of a run over many targets, before any file is read."""
    if job.onnx is not None and job.labels is not None and job.labels.wanted():
        raise UserInputError("--onnx segments one class into 0/255 masks; --references, "
                             "--format and instance filters need the torch model (drop --onnx)")
    if job.workers is not None and job.workers < 0:
        raise UserInputError(f"--workers {job.workers} must be 0 (no threads) or more")
    if job.out is None and (job.resume or job.html):
        raise UserInputError(f"{'--resume' if job.resume else '--html'} works on an output "
                             "folder: add --out DIR")


def find_targets(job, console) -> tuple[list[Path], dict[Path, str]]:
    """The target images and their output names (mirroring subfolders under ``--recursive``);
    says when folders have subfolders of images that are not searched."""
    from sansa_cli.core.images import subfolders_with_images, walk_targets

    found = walk_targets(job.targets, job.recursive, exclude=job.out)
    if not job.recursive:
        skipped = subfolders_with_images(job.targets)
        if skipped:
            console.print(f"note: {skipped} subfolder{'s' if skipped > 1 else ''} of images "
                          "not searched; add --recursive to segment them too", markup=False,
                          highlight=False, soft_wrap=True)
    return [path for path, _ in found], dict(found)


def run_settings(job) -> dict:
    """What makes a run's outputs what they are: a resumed run must match them."""
    labels = job.labels
    return {"references": [[str(i), str(m)] for i, m in job.references],
            "adapters": str(job.adapters), "sam2": job.sam2,
            "sam2_checkpoint": None if job.sam2_checkpoint is None else str(job.sam2_checkpoint),
            "precision": job.precision, "input_profile": list(job.input_profile),
            "onnx": None if job.onnx is None else str(Path(job.onnx).resolve()),
            "labels": None if labels is None or not labels.wanted() else labels.settings()}


def review_thumbnails(job, targets, inputs, names) -> dict[Path, Path]:
    """target -> its thumbnail for ``--html`` (checked before any work; empty without)."""
    if not job.html:
        return {}
    from sansa_cli.predict.outputs import review_paths

    return review_paths(job.out, targets, inputs, names)


def open_journal(job, settings: dict):
    """The output folder's journal (None without ``--out``)."""
    if job.out is None:
        return None
    from sansa_cli.predict.journal import Journal

    return Journal(job.out, settings, job.resume)


def _check_model_options(job: PredictJob) -> None:
    """The model's names and files, from their headers, before any warning or work."""
    if job.onnx is not None:
        from sansa_cli.onnx.manifest import read_manifest

        read_manifest(job.onnx)
        return
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


def load(job: PredictJob):
    """The model: sansa's (torch), or an ONNX export run by onnxruntime (no torch)."""
    if job.onnx is not None:
        from sansa_cli.onnx_runtime import OnnxSansa

        return OnnxSansa(job.onnx, job.batch_size or 1, job.input_profile)
    from sansa_cli.api import load_model

    return load_model(sam2=job.sam2, sam2_checkpoint=job.sam2_checkpoint,
                      adapters=job.adapters, device=job.device,
                      precision=job.precision, batch_size=job.batch_size,
                      allow_base_mismatch=job.allow_base_mismatch,
                      input_profile=job.input_profile)


def _segment_all(job: PredictJob, references, targets, names, plans, journal, console) -> None:
    from rich.console import Console

    model = load(job)
    plan, thumbs = plans
    start = time.perf_counter()
    memory = model.encode_references(references)
    pictures = Pictures.for_run(job, thumbs, [("object", memory)])
    files = {t: [*(p for p in plan.get(t, ()) if p), *([thumbs[t]] if t in thumbs else [])]
             for t in targets}
    todo = remaining(targets, names, files, journal, job.out, console)
    stages = Stages(prepare=timed(model.prepare),
                    step=lambda items: model.decode(memory, model.encode_prepared(
                        [item for item, _ in items])),
                    finish=lambda item, raw: _finish(item, raw, plan, pictures, job))
    shown = run_with_progress(todo, stages, model.batch_size, job, names, journal, console,
                              "segmenting")
    seconds = time.perf_counter() - start
    header = _summary(job, model, seconds)
    if job.out is not None:
        keys = [names[t] for t in targets]
        if job.json:
            write_summary_json(job.out / "predictions.json", header, journal.rows(keys))
        if job.html:
            write_page(job.out, header, journal.rows(keys), len(targets))
    _print_table(Console(), header, shown, len(targets), job.out)


def remaining(targets, names, plan, journal, out, console) -> list[Path]:
    """The targets still to do: all of them, or under ``--resume`` those without whole
    outputs from an earlier run (said in one line)."""
    if journal is None or not journal.has_rows():
        return list(targets)
    todo = [t for t in targets if not journal.done(names[t], list(plan.get(t, ())), out)]
    console.print(f"resuming: {len(targets) - len(todo)} of {len(targets)} targets already "
                  f"done in {out}, {len(todo)} to go", markup=False, highlight=False)
    return todo


def timed(prepare):
    """``prepare`` that also notes when the target's work started (for its row's seconds)."""
    def run(target):
        return prepare(target), time.perf_counter()
    return run


def run_with_progress(todo, stages, batch_size, job, names, journal, console, verb) -> list:
    """Run the stages over ``todo`` with a progress bar; record each finished target in the
    journal; return the first rows (for the table)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from sansa_cli.predict.pipeline import TargetFailed, default_workers, run_stages

    workers = default_workers() if job.workers is None else job.workers
    shown: list[dict] = []  # the table's rows only: memory stays flat in the targets
    finished = 0
    columns = (TextColumn(verb), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("targets", total=len(todo))
        try:
            for target, (row, outputs) in run_stages(todo, stages, batch_size, workers):
                if journal is not None:
                    journal.record(names[target], row, outputs, job.out)
                if len(shown) < TABLE_ROWS:
                    shown.append(row)
                finished += 1
                progress.update(task, advance=1)
        except TargetFailed as failed:
            raise UserInputError(f"{failed.error}; stopped at target {failed.index + 1} of "
                                 f"{len(todo)}{_written(finished, job.out)}") from failed.error
    return shown


TABLE_ROWS = 20


def _finish(item, raw, plan, pictures, job) -> tuple[dict, list[Path]]:
    """Upsample one target's mask, write its outputs; its summary row and files written."""
    from sansa_cli.artifacts.masks import write_mask
    from sansa_cli.predict.outputs import caption
    from sansa_cli.visualize.overlays import OverlayLayer

    prepared, started = item
    result = raw.finish(prepared.size)
    result.source = prepared.source
    outputs = []
    target = Path(prepared.source)
    if target in plan:
        mask_path, overlay_path = plan[target]
        write_mask(mask_path, result.mask)
        outputs.append(mask_path)
        layers = [OverlayLayer(result.mask, "object", 0,
                               caption(result.predicted_iou, result.object_score))]
        outputs += pictures.draw(target, prepared.image, layers, overlay_path)
    result.seconds = time.perf_counter() - started
    row = _target_row(target, result, plan, job)
    row["overlay"] = relative(overlay_path, job.out) if target in plan else None
    row["thumbnail"] = relative(pictures.thumbs.get(target), job.out)
    return row, outputs


def relative(path: Path | None, out: Path | None) -> str | None:
    """``path`` relative to the output folder, as the summaries name files (None: none)."""
    return None if path is None else path.relative_to(out).as_posix()


class Pictures:
    """The overlays and review thumbnails of a run: references drawn once, then per target."""

    def __init__(self, references, thumbs: dict[Path, Path]):
        self.references, self.thumbs = references, thumbs

    @classmethod
    def for_run(cls, job, thumbs: dict, classes: list) -> Pictures:
        """``classes``: (name, ReferenceMemory) in class order (their colour order)."""
        references = None
        if job.overlay:
            from sansa_cli.predict.outputs import reference_group
            from sansa_cli.visualize.overlays import prepare_references

            references = prepare_references([reference_group(name, k, memory)
                                             for k, (name, memory) in enumerate(classes)])
        return cls(references, thumbs)

    def draw(self, target: Path, image, layers, overlay_path: Path | None) -> list[Path]:
        """Write ``target``'s overlay and/or thumbnail; the paths written."""
        from sansa_cli.predict.outputs import write_overlay, write_thumbnail

        thumb = self.thumbs.get(target)
        if overlay_path is not None:
            write_overlay(overlay_path, image, layers, target.name, self.references,
                          thumbnail=thumb)
        elif thumb is not None:
            write_thumbnail(thumb, image, layers)
        return [p for p in (overlay_path, thumb) if p is not None]


def _written(count: int, out: Path | None) -> str:
    if out is None:
        return ""
    return (f" (the outputs of {count} targets before it written to {out})" if count
            else " (no mask written)")


def adapter_record(model) -> dict:
    """Which adapter file made the predictions, its hash, and how inputs were fed."""
    import dataclasses

    from sansa_cli.artifacts.hashing import sha256_file

    manifest = getattr(model, "manifest", None)
    if manifest is not None:  # an ONNX export: as its manifest records the file
        adapters = manifest.values.get("adapters", {})
        return {"adapter_file": adapters.get("file"), "adapter_sha256": adapters.get("sha256"),
                "input_profile": dataclasses.asdict(model.profile),
                "onnx": str(manifest.folder.resolve())}
    path = model.adapter_file
    return {"adapter_file": None if path is None else str(Path(path).resolve()),
            "adapter_sha256": None if path is None else sha256_file(path),
            "input_profile": dataclasses.asdict(model.profile)}


def _target_row(target: Path, result, plan, job) -> dict:
    """What predictions.json and the table keep of one target (not its mask)."""
    mask = plan[target][0].relative_to(job.out).as_posix() if target in plan else None
    return {"image": str(target), "mask": mask,
            "predicted_iou": round(result.predicted_iou, 4),
            "object_score": None if result.object_score is None
            else round(result.object_score, 4),
            "mask_area": result.area, "mask_fraction": round(result.area / result.mask.size, 4),
            "height": int(result.mask.shape[0]), "width": int(result.mask.shape[1]),
            "seconds": round(result.seconds, 4)}


def _summary(job, model, seconds: float) -> dict:
    return {
        "references": [{"image": str(i), "marking": str(m)} for i, m in job.references],
        "sam2": model.base_name,
        "adapters": strategy_name(model),
        **adapter_record(model),
        "device": str(model.device),
        "precision": model.precision,
        "seconds_total": round(seconds, 3),
    }


def strategy_name(model) -> str | None:
    """The adapter strategy of the model (of an ONNX export: as its manifest records it)."""
    manifest = getattr(model, "manifest", None)
    if manifest is not None:
        return manifest.values.get("adapters", {}).get("strategy")
    return getattr(model.strategy, "name", None)


def write_summary_json(path: Path, header: dict, rows) -> None:
    """``predictions.json``: ``header`` with a ``targets`` list streamed from ``rows`` (a
    finished run's rows are never all in memory); written atomically, NaN as null."""
    from sansa_cli.artifacts.files import atomic_path, finite_json

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(finite_json(header)[:-1].rstrip() + ',\n  "targets": [')
        for number, row in enumerate(rows):
            f.write(("," if number else "") + "\n    " + finite_json(row, indent=None))
        f.write("\n  ]\n}\n")


def write_page(out: Path, header: dict, rows, total: int, classes: list[str] | None = None
               ) -> None:
    """``OUT/index.html`` from the journal's rows (one class, or ``classes`` in colour order)."""
    from sansa_cli.visualize.review_page import ReviewClass, ReviewItem, write_review_page

    def item(row) -> ReviewItem:
        if classes is None:
            found = [ReviewClass("object", row["predicted_iou"], row["mask_fraction"], 0)]
        else:
            pixels = row["height"] * row["width"]
            found = [ReviewClass(c["name"], c["predicted_iou"],
                                 sum(i["area"] for i in c["instances"]) / pixels, k)
                     for k, c in enumerate(row["classes"])]
        return ReviewItem(Path(row["image"]).name, row.get("thumbnail"),
                          row.get("overlay") or row.get("mask"), found)

    write_review_page(out, (item(row) for row in rows), f"sansa predict: {total} targets",
                      header, score_label="predicted IoU")


def _print_table(console, summary, rows, total: int, out) -> None:
    from rich.table import Table

    table = Table(title=f"{total} targets in {summary['seconds_total']:.1f} s")
    for column in ("target", "predicted IoU", "present", "area %"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for row in rows[:TABLE_ROWS]:
        score = "-" if row["object_score"] is None else f"{row['object_score']:.2f}"
        table.add_row(Path(row["image"]).name, f"{row['predicted_iou']:.2f}", score,
                      f"{100 * row['mask_fraction']:.1f}")
    if total > len(rows[:TABLE_ROWS]):
        table.caption = f"... and {total - len(rows[:TABLE_ROWS])} more"
    console.print(table)
    if out:
        console.print(f"masks written to {out}")
