"""``sansa predict --onnx DIR``: the prediction job on an ONNX export, without PyTorch.

The same checks before any work as the torch job (references, targets, output folder, the
export's manifest), then the torch-free runtime (:mod:`sansa_cli.onnx_runtime`): ``<stem>.png``
masks (0/255, each target's size) and, with ``json``, ``predictions.json`` whose rows have the
torch job's keys. Nothing here imports torch or sam2.
"""

from __future__ import annotations

import time
from pathlib import Path

from sansa_cli.errors import UserInputError


def run_onnx_predict(onnx_dir: Path, references: list[tuple[Path, object]], targets: list[Path],
                     out: Path | None = None, json: bool = False, batch_size: int = 1,
                     input_profile: list[str] | None = None,
                     threads: int | None = None) -> dict:
    """Segment ``targets`` (images or folders) from ``references`` ((image, mask path or
    prompt) pairs) with the export in ``onnx_dir``; writes masks into ``out`` and, with
    ``json``, ``out/predictions.json``. Returns the summary (header and ``targets`` rows).

    Every input is checked before the graphs are loaded; a target that fails to decode while
    segmenting stops the run there, naming it and how many masks were written.
    """
    from rich.console import Console

    from sansa_cli.core.images import frame_count, list_targets
    from sansa_cli.core.references import load_reference
    from sansa_cli.onnx.manifest import read_manifest

    console = Console(stderr=True)
    loaded = [load_reference(image, marking) for image, marking in references]
    found = list_targets(targets)
    for target in found:
        if frame_count(target, "target") > 1:
            console.print(f"warning: target {target} has several frames; only its first frame "
                          "is segmented", markup=False, highlight=False, soft_wrap=True)
    if out is None and json:
        raise UserInputError("--json writes predictions.json: add --out DIR")
    inputs = [p for pair in references for p in pair if isinstance(p, Path)] + found
    plan = _plan(out, found, inputs, json) if out is not None else {}
    manifest = read_manifest(onnx_dir)
    if out is None:
        console.print("warning: no --out given: the masks are computed and summarised but not "
                      "saved; add --out DIR to keep them", markup=False, highlight=False,
                      soft_wrap=True)
    from sansa_cli.artifacts.files import output_lock
    from sansa_cli.onnx_runtime import OnnxSansa

    model = OnnxSansa(manifest.folder, batch_size, input_profile, threads)
    start = time.perf_counter()
    with output_lock(out) if out is not None else _no_lock():
        memory = model.encode_references(loaded)
        rows = _segment(model, memory, found, plan, out)
    summary = {**_header(model, references, time.perf_counter() - start), "targets": rows}
    if json:
        from sansa_cli.artifacts.files import finite_json, write_bytes_atomic

        write_bytes_atomic(out / "predictions.json", (finite_json(summary) + "\n").encode())
    _print_table(Console(), summary, out)
    return summary


def _plan(out: Path, targets: list[Path], inputs: list[Path], json: bool) -> dict[Path, Path]:
    """target -> its mask path in ``out``, checked as the torch job checks it."""
    from sansa_cli.artifacts.files import check_output_dir, plan_outputs

    check_output_dir(out)
    extra = ("predictions.json",) if json else ()
    plan = plan_outputs(out, targets, ("",), inputs, extra=extra)
    holding = next((t for t in targets if t.parent.resolve() == out.resolve()), None)
    if holding is not None:
        raise UserInputError(f"--out {out} is the folder of the target {holding}; masks written "
                             "there would be read as targets by the next run over it; choose "
                             f"another folder, e.g. {out / 'masks'}")
    return {target: paths[0] for target, paths in plan.items()}


def _segment(model, memory, targets: list[Path], plan: dict, out: Path | None) -> list[dict]:
    from sansa_cli.artifacts.masks import write_mask

    rows: list[dict] = []
    try:
        for target, result in zip(targets, model.segment(memory, targets)):
            if target in plan:
                write_mask(plan[target], result.mask)
            rows.append(_row(target, result, plan, out))
    except UserInputError as exc:
        where = f"; stopped at target {len(rows) + 1} of {len(targets)}"
        written = f" (masks of the first {len(rows)} written to {out})" if out and rows else ""
        raise UserInputError(f"{exc}{where}{written}") from exc
    return rows


def _row(target: Path, result, plan: dict, out: Path | None) -> dict:
    """What predictions.json keeps of one target (the torch job's keys)."""
    mask = plan[target].relative_to(out).as_posix() if target in plan else None
    return {"image": str(target), "mask": mask,
            "predicted_iou": round(result.predicted_iou, 4),
            "object_score": None if result.object_score is None
            else round(result.object_score, 4),
            "mask_area": result.area, "mask_fraction": round(result.area / result.mask.size, 4),
            "height": int(result.mask.shape[0]), "width": int(result.mask.shape[1]),
            "seconds": round(result.seconds, 4)}


def _header(model, references, seconds: float) -> dict:
    import dataclasses

    values = model.manifest.values
    adapters = values.get("adapters", {})
    return {"references": [{"image": str(i), "marking": str(m)} for i, m in references],
            "sam2": values.get("base_model"), "adapters": adapters.get("strategy"),
            "adapter_file": adapters.get("file"), "adapter_sha256": adapters.get("sha256"),
            "input_profile": dataclasses.asdict(model.profile),
            "onnx": str(model.manifest.folder.resolve()),
            "device": "onnxruntime:" + ",".join(model.providers), "precision": "fp32",
            "seconds_total": round(seconds, 3)}


def _print_table(console, summary: dict, out: Path | None, shown: int = 20) -> None:
    from rich.table import Table

    rows = summary["targets"]
    table = Table(title=f"{len(rows)} targets in {summary['seconds_total']:.1f} s (ONNX)")
    for column in ("target", "predicted IoU", "present", "area %"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for row in rows[:shown]:
        score = "-" if row["object_score"] is None else f"{row['object_score']:.2f}"
        table.add_row(Path(row["image"]).name, f"{row['predicted_iou']:.2f}", score,
                      f"{100 * row['mask_fraction']:.1f}")
    if len(rows) > shown:
        table.caption = f"... and {len(rows) - shown} more"
    console.print(table)
    if out:
        console.print(f"masks written to {out}")


def _no_lock():
    import contextlib

    return contextlib.nullcontext()
