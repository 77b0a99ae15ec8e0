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

    def settings(self) -> dict:
        """What a resumed run must share with the run it continues."""
        return {"references_file": None if self.references_file is None
                else str(self.references_file), "max_references": self.max_references,
                "formats": self.formats, "polygons": self.polygons, "min_area": self.min_area,
                "min_score": self.min_score, "image_url_prefix": self.image_url_prefix,
                "class_name": self.class_name}

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

    options: LabelOptions = job.labels
    check_options(options)
    console = Console(stderr=True)
    from sansa_cli.predict.job import check_run_options, find_targets

    check_run_options(job)
    plan = _plan_classes(job, options)
    skip = plan.labelled_images if plan is not None else frozenset()
    found, names = find_targets(job, console)
    targets = [t for t in found if t.resolve() not in skip]
    if not targets:
        raise UserInputError("no target left to label: every target image is already labelled "
                             "in the references file; add other images")
    if job.out is None:
        raise UserInputError("--references, --format and instance filters write label files: "
                             "add --out DIR")
    from sansa_cli.predict.job import (
        check_out,
        check_targets,
        locked_out,
        open_journal,
        review_thumbnails,
        run_settings,
    )

    check_targets(targets, console)
    inputs = [*targets, *(p for pair in job.references for p in pair if isinstance(p, Path))]
    outputs = check_out(job.out, targets, inputs, job.overlay, names)
    thumbs = review_thumbnails(job, targets, inputs, names)
    classes = _load_classes(job, options, plan, console)
    with locked_out(job.out):
        journal = open_journal(job, run_settings(job))
        try:
            _label_all(job, options, classes, targets, names, (outputs, thumbs), journal,
                       console)
        finally:
            journal.close()


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


def _label_all(job, options: LabelOptions, classes, targets, names, plans, journal,
               console) -> None:
    from rich.console import Console

    from sansa_cli.core import labelling
    from sansa_cli.predict.job import (
        Pictures,
        load,
        relative,
        remaining,
        run_with_progress,
        strategy_name,
        timed,
        write_page,
    )
    from sansa_cli.predict.pipeline import Stages

    model = load(job)
    start = time.perf_counter()
    encoded = labelling.encode_classes(model, classes)
    writers = _writers(job, options, classes, targets)
    plan, thumbs = plans
    pictures = Pictures.for_run(job, thumbs, [(c.name, c.memory) for c in encoded])
    one_mask = "png" in options.formats and len(classes) == 1  # the one-class 0/255 mask
    planned = {t: [*([plan[t][0]] if one_mask else []),
                   *(f for w in writers for f in w.image_files(names[t])),
                   *(p for p in (plan[t][1], thumbs.get(t)) if p is not None)]
               for t in targets}
    names_of_classes = [c.name for c in encoded]
    todo = remaining(targets, names, planned, journal, job.out, console)

    def step(items):
        frames = model.encode_prepared([item for item, _ in items])
        return [labelling.decode_classes(model, frames.select([i]), encoded)
                for i in range(len(items))]

    def finish(item, raw):
        prepared, started = item
        result = raw.finish(prepared.size, names_of_classes, options.min_area,
                            options.min_score)
        result.seconds = time.perf_counter() - started
        target = Path(prepared.source)
        records = _write(target, names[target], result, writers,
                         plan[target][0] if one_mask else None)
        overlay = plan[target][1]
        if overlay is not None or target in thumbs:
            from sansa_cli.predict.outputs import label_layers

            pictures.draw(target, prepared.image, label_layers(result), overlay)
        row = {**_row(target, result), "labels": records,
               "overlay": relative(overlay, job.out),
               "thumbnail": relative(thumbs.get(target), job.out)}
        return row, planned[target]

    stages = Stages(prepare=timed(model.prepare), step=step, finish=finish)
    shown = run_with_progress(todo, stages, model.batch_size, job, names, journal, console,
                              "labelling")
    keys = [names[t] for t in targets]
    for row in journal.rows(keys):  # every target's records, this run's and earlier runs'
        for writer in writers:
            writer.keep(row["labels"].get(type(writer).__name__))
    written = [path for writer in writers for path in writer.close()]
    summary = {"sam2": model.base_name, "adapters": strategy_name(model),
               "classes": [c.name for c in classes], "formats": options.formats,
               "min_area": options.min_area, "min_score": options.min_score,
               "device": str(model.device), "precision": model.precision,
               "seconds_total": round(time.perf_counter() - start, 3)}
    if job.json:
        from sansa_cli.predict.job import adapter_record, write_summary_json

        write_summary_json(job.out / "predictions.json", {**summary, **adapter_record(model)},
                           ({k: v for k, v in row.items() if k != "labels"}
                            for row in journal.rows(keys)))
    if job.html:
        write_page(job.out, summary, journal.rows(keys), len(targets), summary["classes"])
    _print_summary(Console(), summary, shown, len(targets), job.out, len(written))


def _write(target: Path, name: str, result, writers, one_mask: Path | None) -> dict:
    """Write one target's per-image files (and ``one_mask``, the one-class 0/255 mask, when
    given); its records for the collection files."""
    from sansa_cli.labels import Instance, LabelledImage

    height, width = result.size
    instances = [Instance(k, inst.component, inst.score)
                 for k, cls in enumerate(result.classes) for inst in cls.instances]
    image = LabelledImage(target, width, height, instances, result.semantic, name=name)
    records = {}
    for writer in writers:  # names were checked unique before any work: safe in threads
        records[type(writer).__name__] = writer.encode(image)
    if one_mask is not None:
        from sansa_cli.artifacts.masks import write_mask

        write_mask(one_mask, result.semantic > 0)
    return records


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


def _print_summary(console, summary: dict, rows: list, total: int, out: Path,
                   files: int) -> None:
    from rich.table import Table

    table = Table(title=f"{total} targets, {len(summary['classes'])} classes in "
                        f"{summary['seconds_total']:.1f} s")
    table.add_column("target")
    for name in summary["classes"]:
        table.add_column(name, justify="right")
    for row in rows[:20]:
        cells = [", ".join(f"{i['score']:.2f}" for i in c["instances"]) or "-"
                 for c in row["classes"]]
        table.add_row(Path(row["image"]).name, *cells)
    if total > len(rows[:20]):
        table.caption = f"... and {total - len(rows[:20])} more"
    console.print(table)
    console.print(f"instance scores per class above; {files} label files written to {out} "
                  f"({', '.join(summary['formats'])})")
