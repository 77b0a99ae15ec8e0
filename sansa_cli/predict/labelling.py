"""``sansa predict --references FILE`` and ``--format``: label a folder with several classes.

Every input is checked before any model is built: the references file (YAML class list or a
COCO instances file, :mod:`sansa_cli.core.class_references`), the targets (a COCO file's
annotated images are already labelled and left out), the output folder. Each target is then
encoded once for all classes (:mod:`sansa_cli.core.labelling`), its classes' instances are
handed to one writer per format (:mod:`sansa_cli.labels`), and ``--json`` adds
``predictions.json`` (per target and class: instances with score and area).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from sansa_cli.errors import UserInputError

FORMAT_NAMES = ("png", "coco", "yolo", "labelstudio")


@dataclass
class LabelOptions:
    """What ``predict`` does beyond one 0/255 mask per target (see ``sansa predict --help``)."""

    references_file: Path | None = None
    reference_images: Path | None = None
    max_references: int | None = None
    formats: list[str] = field(default_factory=lambda: ["png"])
    polygons: bool = False
    min_area: int = 0
    min_score: float = 0.0
    image_url_prefix: str | None = None
    class_name: str = "object"

    def wanted(self) -> bool:
        """Whether the labelling path is needed (the plain one-class masks are not enough)."""
        return (self.references_file is not None or self.formats != ["png"] or self.polygons
                or self.min_area > 0 or self.min_score > 0)


def parse_formats(text: str) -> list[str]:
    """``--format png,coco`` -> ['png', 'coco'] (each once, in the given order)."""
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMAT_NAMES]
    if unknown or not formats:
        raise UserInputError(f"--format {text!r}: {unknown[0] if unknown else 'nothing'} is not "
                             f"a format; choose from {', '.join(FORMAT_NAMES)} (comma-separated)")
    return list(dict.fromkeys(formats))


def check_options(options: LabelOptions) -> None:
    if options.min_area < 0:
        raise UserInputError(f"--min-area {options.min_area} must not be negative")
    if not 0 <= options.min_score <= 1:
        raise UserInputError(f"--min-score {options.min_score} must be in [0, 1]")
    if options.max_references is not None and options.max_references < 1:
        raise UserInputError(f"--max-references {options.max_references} must be at least 1")
    if options.reference_images is not None and options.references_file is None:
        raise UserInputError("--reference-images goes with --references FILE (a COCO file)")


def run_labelling(job) -> None:
    """Label ``job.targets`` (a :class:`~sansa_cli.predict.job.PredictJob` whose ``labels``
    are set); writes nothing unless every input checks out."""
    from rich.console import Console

    from sansa_cli.core.images import list_targets

    options: LabelOptions = job.labels
    check_options(options)
    if job.overlay:
        raise UserInputError("--overlay draws the plain one-class masks; drop it with "
                             "--references, --format or instance filters")
    console = Console(stderr=True)
    plan = _plan_classes(job, options)
    skip = plan.labelled_images if plan is not None else frozenset()
    targets = [t for t in list_targets(job.targets) if t.resolve() not in skip]
    if not targets:
        raise UserInputError("no target left to label: every target image is already labelled "
                             "in the references file; add other images")
    if job.out is None:
        raise UserInputError("--references, --format and instance filters write label files: "
                             "add --out DIR")
    from sansa_cli.predict.job import check_out, check_targets, locked_out

    check_targets(targets, console)
    inputs = [*targets, *(p for pair in job.references for p in pair if isinstance(p, Path))]
    check_out(job.out, targets, inputs, overlay=False)
    classes = _load_classes(job, options, plan, console)
    with locked_out(job.out):
        _label_all(job, options, classes, targets, console)


def _plan_classes(job, options: LabelOptions):
    if options.references_file is None:
        return None
    if job.references:
        raise UserInputError("give the references either in --references FILE or on the command "
                             "line (REF_IMAGE REF_MASK, --ref, --points, ...), not both")
    from sansa_cli.core.class_references import plan_class_references

    return plan_class_references(options.references_file,
                                 reference_images=options.reference_images,
                                 max_references=options.max_references)


def _load_classes(job, options: LabelOptions, plan, console) -> list:
    from sansa_cli.core.class_references import ClassReferences
    from sansa_cli.core.references import load_reference

    if plan is None:
        refs = [load_reference(image, marking) for image, marking in job.references]
        return [ClassReferences(options.class_name, refs, [str(i) for i, _ in job.references],
                                None)]
    loaded = plan.load()
    for warning in loaded.warnings:
        console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    return loaded.classes


def _writers(job, options: LabelOptions, classes, targets) -> list:
    from sansa_cli.labels import ClassInfo, make_writer

    infos = [ClassInfo(c.name, c.category_id) for c in classes]
    root = _common_folder(targets)
    return [make_writer(fmt, job.out, infos, polygons=options.polygons, image_root=root,
                        image_url_prefix=options.image_url_prefix)
            for fmt in options.formats if not (fmt == "png" and len(classes) == 1)]


def _common_folder(targets: list[Path]) -> Path:
    import os

    return Path(os.path.commonpath([str(t.resolve().parent) for t in targets]))


def _label_all(job, options: LabelOptions, classes, targets, console) -> None:
    from rich.console import Console

    from sansa_cli.api import load_model
    from sansa_cli.core import labelling

    model = load_model(sam2=job.sam2, sam2_checkpoint=job.sam2_checkpoint,
                       adapters=job.adapters, device=job.device, precision=job.precision,
                       batch_size=job.batch_size, allow_base_mismatch=job.allow_base_mismatch,
                       input_profile=job.input_profile)
    start = time.perf_counter()
    encoded = labelling.encode_classes(model, classes)
    writers = _writers(job, options, classes, targets)
    rows = _run(model, encoded, targets, writers, job, options, console)
    written = [path for writer in writers for path in writer.close()]
    summary = {"sam2": model.base_name, "adapters": getattr(model.strategy, "name", None),
               "classes": [c.name for c in classes], "formats": options.formats,
               "min_area": options.min_area, "min_score": options.min_score,
               "device": str(model.device), "precision": model.precision,
               "seconds_total": round(time.perf_counter() - start, 3), "targets": rows}
    if job.json:
        from sansa_cli.predict.job import adapter_record
        from sansa_cli.predict.outputs import write_json

        write_json(job.out / "predictions.json", {**summary, **adapter_record(model)})
    _print_summary(Console(), summary, job.out, len(written))


def _run(model, encoded, targets, writers, job, options, console) -> list[dict]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from sansa_cli.core import labelling

    rows = []
    columns = (TextColumn("labelling"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("targets", total=len(targets))
        results = labelling.label(model, encoded, targets, min_area=options.min_area,
                                  min_score=options.min_score)
        for target, result in zip(targets, results):
            _write(target, result, writers, job, options)
            rows.append(_row(target, result))
            progress.update(task, advance=1)
    return rows


def _write(target: Path, result, writers, job, options) -> None:
    from sansa_cli.labels import Instance, LabelledImage

    height, width = result.size
    instances = [Instance(k, inst.mask, inst.score)
                 for k, cls in enumerate(result.classes) for inst in cls.instances]
    image = LabelledImage(target, width, height, instances, result.semantic)
    for writer in writers:
        writer.add(image)
    if "png" in options.formats and len(result.classes) == 1:  # the one-class 0/255 mask
        from sansa_cli.artifacts.masks import write_mask

        write_mask(job.out / f"{target.stem}.png", result.semantic > 0)


def _row(target: Path, result) -> dict:
    height, width = result.size
    return {"image": str(target), "height": height, "width": width,
            "seconds": round(result.seconds, 4),
            "classes": [{"name": c.name, "predicted_iou": round(c.predicted_iou, 4),
                         "object_score": None if c.object_score is None
                         else round(c.object_score, 4),
                         "instances": [{"score": round(i.score, 4), "area": i.area}
                                       for i in c.instances]}
                        for c in result.classes]}


def _print_summary(console, summary: dict, out: Path, files: int) -> None:
    from rich.table import Table

    rows = summary["targets"]
    table = Table(title=f"{len(rows)} targets, {len(summary['classes'])} classes in "
                        f"{summary['seconds_total']:.1f} s")
    table.add_column("target")
    for name in summary["classes"]:
        table.add_column(name, justify="right")
    for row in rows[:20]:
        cells = [", ".join(f"{i['score']:.2f}" for i in c["instances"]) or "-"
                 for c in row["classes"]]
        table.add_row(Path(row["image"]).name, *cells)
    if len(rows) > 20:
        table.caption = f"... and {len(rows) - 20} more"
    console.print(table)
    console.print(f"instance scores per class above; {files} label files written to {out} "
                  f"({', '.join(summary['formats'])})")
