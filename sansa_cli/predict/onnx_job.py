"""``sansa predict --onnx DIR`` from Python: the prediction job on an ONNX export, no PyTorch.

It is :func:`sansa_cli.predict.job.run_predict` with the export as the model (the torch-free
runtime, :mod:`sansa_cli.onnx_runtime`): the same checks before any work, worker threads,
journal, ``--resume``, ``--recursive``, overlays and review page. Nothing on this path imports
torch or sam2.
"""

from __future__ import annotations

from pathlib import Path


def run_onnx_predict(onnx_dir: Path, references: list[tuple[Path, object]], targets: list[Path],
                     out: Path | None = None, json: bool = False, batch_size: int = 1,
                     input_profile: list[str] | None = None, **options) -> None:
    """Segment ``targets`` (images or folders) from ``references`` ((image, mask path or
    prompt) pairs) with the export in ``onnx_dir``; writes masks into ``out`` and, with
    ``json``, ``out/predictions.json``. ``options``: the other fields of
    :class:`~sansa_cli.predict.job.PredictJob` (``overlay``, ``html``, ``resume``,
    ``recursive``, ``workers``)."""
    from sansa_cli.predict.job import PredictJob, run_predict

    run_predict(PredictJob(references=list(references), targets=list(targets), out=out,
                           json=json, batch_size=batch_size,
                           input_profile=list(input_profile or []), onnx=Path(onnx_dir),
                           **options))
