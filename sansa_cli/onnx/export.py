"""``sansa export-onnx``: the few-shot pipeline as ONNX graphs and a manifest.

The model is built exactly as for ``sansa predict`` (:func:`sansa_cli.core.assemble.build_model`),
on the CPU in fp32; an adapter strategy that can merge (LoRA) is first folded into SAM2's
weights, others are traced into the encoder as they run (hooks, subclassed instances). SAM2's
complex-valued RoPE is replaced by the real-valued one of :mod:`sansa_cli.onnx.rope` on the
module instances for the export only. The graphs are those of :mod:`sansa_cli.onnx.graphs`,
exported with ``torch.onnx.export(..., dynamo=True)``; the batch of targets, the number of
references and the number of clicks are dynamic dimensions. ``sansa-onnx.json``
(:mod:`sansa_cli.onnx.manifest`) is written last.
"""

from __future__ import annotations

import dataclasses
import platform
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sansa_cli.errors import UserInputError
from sansa_cli.onnx.manifest import FORMAT, FORMAT_VERSION, GRAPHS, MANIFEST_NAME, MEMORY_PRECISION

DEFAULT_OPSET = 18


@dataclass
class GraphSpec:
    """One graph to export: its module, example inputs, names and dynamic dimensions."""

    name: str
    module: object
    example: tuple
    inputs: list[str]
    outputs: list[str]
    dynamic: tuple  # {axis: Dim} or None per input, grouped as forward's parameters


def export_onnx(out: str | Path, adapters: str | Path = "none", sam2: str | None = None,
                sam2_checkpoint: str | Path | None = None, input_profile=None,
                download: bool = True, allow_base_mismatch: bool = False,
                opset: int = DEFAULT_OPSET, merge: bool = True,
                on_graph: Callable[[str], None] | None = None) -> Path:
    """Export every graph of the pipeline into the folder ``out``; returns the manifest's path.

    Args:
        out: a new or empty folder.
        adapters, sam2, sam2_checkpoint, download, allow_base_mismatch: as for
            :func:`sansa_cli.api.load_model` (``adapters="none"``: frozen SAM2).
        input_profile: ``--input-profile`` values on top of the adapter file's profile; the
            runtime feeds images and reference masks by the recorded profile.
        opset: the ONNX opset (18 by default).
        merge: fold a mergeable adapter (LoRA) into SAM2's weights before exporting.
        on_graph: called with each graph's name before it is exported (progress).

    A failed export removes the graphs it wrote; the manifest is written last.
    """
    out = _check_out(Path(out))
    _check_exporter()
    if not 17 <= opset <= 23:
        raise UserInputError(f"opset {opset} is not supported; use 17 to 23 (default 18)")
    import torch

    from sansa_cli.api import resolve_adapters
    from sansa_cli.core.assemble import build_model
    from sansa_cli.core.input_profile import VIDEO_PREDICTOR, apply_profile_options
    from sansa_cli.onnx.rope import real_rope

    base_profile = VIDEO_PREDICTOR
    apply_profile_options(base_profile, input_profile)  # bad options fail before the build
    adapter_file = resolve_adapters(adapters, download)
    built = build_model(sam2, checkpoint=sam2_checkpoint, download=download,
                        adapters=adapter_file, device="cpu",
                        allow_base_mismatch=allow_base_mismatch)
    if built.adapter_info is not None:
        base_profile = built.adapter_info.profile()[0]
    profile = apply_profile_options(base_profile, input_profile)
    merged = bool(built.strategy is not None and built.strategy.can_merge and merge)
    if merged:
        built.strategy.merge(built.sam)
    sam = built.sam.float().eval()
    files: dict[str, Path] = {}
    try:
        with torch.no_grad(), real_rope(sam):
            for spec in graph_specs(sam):
                if on_graph:
                    on_graph(spec.name)
                files[spec.name] = export_graph(spec, out / f"{spec.name}.onnx", opset)
    except BaseException:
        for path in files.values():
            path.unlink(missing_ok=True)
        raise
    manifest = _manifest(built, adapter_file, merged, profile, opset, files)
    return _write_manifest(out / MANIFEST_NAME, manifest)


def graph_specs(sam) -> list[GraphSpec]:
    """The five graphs of :mod:`sansa_cli.onnx.graphs` with example inputs for ``sam``."""
    import torch
    from torch.export import Dim

    from sansa_cli.onnx import graphs

    size = int(sam.image_size)
    positions, memory_position = graphs.constant_positions(sam, size)
    levels = graphs.level_names(len(positions))
    batch, refs, points = Dim("batch", min=1), Dim("references", min=1), Dim("points", min=1)
    encoder = graphs.Encoder(sam).eval()
    example = encoder(torch.randn(2, 3, size, size))
    one = tuple(x[:1] for x in example)
    memory_dim = int(sam.mem_dim)
    mask = (torch.rand(2, 1, size, size) > 0.5).float()
    coords = torch.tensor([[[size * 0.2, size * 0.3], [size * 0.7, size * 0.8]]])
    labels = torch.tensor([[2, 3]], dtype=torch.int32)
    memory = torch.randn(2, memory_dim, *example[-1].shape[-2:])
    obj_ptr = torch.randn(2, int(sam.hidden_dim))
    per_level = tuple({0: batch} for _ in levels)
    return [
        GraphSpec("encoder", encoder, (torch.randn(2, 3, size, size),), ["image"], levels,
                  ({0: batch},)),
        GraphSpec("mask_reference", graphs.MaskReference(sam, positions).eval(),
                  (*example, mask), [*levels, "mask"], ["memory", "obj_ptr"],
                  ((*per_level, {0: batch}),)),
        GraphSpec("prompt_reference", graphs.PromptReference(sam, positions).eval(),
                  (*one, coords, labels), [*levels, "point_coords", "point_labels"],
                  ["memory", "obj_ptr", "low_res_logits"],
                  ((*(None for _ in levels), {1: points}, {1: points}),)),
        GraphSpec("condition", graphs.Condition(sam, positions[-1], memory_position).eval(),
                  (example[-1], memory, obj_ptr), ["features", "memory", "obj_ptr"],
                  ["conditioned"], ({0: batch}, {0: refs}, {0: refs})),
        GraphSpec("decoder", graphs.Decoder(sam).eval(), (example[-1], *example[:-1]),
                  ["conditioned", *levels[:-1]],
                  ["low_res_logits", "predicted_iou", "object_score_logits"],
                  ({0: batch}, tuple({0: batch} for _ in levels[:-1]))),
    ]


def export_graph(spec: GraphSpec, path: Path, opset: int) -> Path:
    """Export one graph with the dynamo exporter, written atomically to ``path``."""
    import torch

    from sansa_cli.artifacts.files import atomic_path

    with warnings.catch_warnings():
        # One Dim shared by several inputs (the batch, the references) is named once; the
        # exporter says so for every other input that carries it.
        warnings.filterwarnings("ignore", message=".*will not be used, since it shares")
        program = torch.onnx.export(spec.module, spec.example, dynamo=True,
                                    opset_version=opset, input_names=spec.inputs,
                                    output_names=spec.outputs, dynamic_shapes=spec.dynamic,
                                    verbose=False)
        with atomic_path(path) as tmp:
            program.save(str(tmp))
    return path


def describe_graph(path: Path) -> dict:
    """Inputs and outputs of an ONNX file: name, dtype, shape (strings: dynamic)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def values(items):
        out = []
        for item in items:
            tensor = item.type.tensor_type
            shape = [d.dim_param or d.dim_value for d in tensor.shape.dim]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
            out.append({"name": item.name, "dtype": dtype, "shape": shape})
        return out

    return {"file": path.name, "inputs": values(model.graph.input),
            "outputs": values(model.graph.output)}


def _manifest(built, adapter_file, merged: bool, profile, opset: int, files: dict) -> dict:
    from sansa_cli import __version__
    from sansa_cli.artifacts.hashing import sha256_file

    sam = built.sam
    checkpoint = built.checkpoint
    described = {name: describe_graph(files[name]) for name in GRAPHS}
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "sansa_version": __version__,
        "base_model": built.spec.name,
        "sam2_checkpoint": None if checkpoint is None else str(Path(checkpoint).resolve()),
        "sam2_checkpoint_sha256": None if checkpoint is None else sha256_file(checkpoint),
        "adapters": {
            "file": None if adapter_file is None else str(Path(adapter_file).resolve()),
            "sha256": None if adapter_file is None else sha256_file(adapter_file),
            "strategy": getattr(built.strategy, "name", None), "merged": merged},
        "input_profile": dataclasses.asdict(profile),
        "memory_precision": MEMORY_PRECISION[profile.memory_dtype],
        "image_size": int(sam.image_size), "opset": opset, "dtype": "float32",
        "levels": [item["name"] for item in described["encoder"]["outputs"]],
        "object_score": bool(sam.pred_obj_scores),
        "graphs": described,
        "versions": _versions(),
    }


def _versions() -> dict:
    from importlib import metadata

    import torch

    found = {"python": platform.python_version(), "torch": torch.__version__}  # with its build
    for name in ("sam2", "onnx", "onnxscript", "onnxruntime", "numpy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _write_manifest(path: Path, manifest: dict) -> Path:
    from sansa_cli.artifacts.files import finite_json, write_bytes_atomic

    write_bytes_atomic(path, (finite_json(manifest) + "\n").encode())
    return path


def _check_out(out: Path) -> Path:
    """``out`` if it is a new or empty folder that can be written."""
    from sansa_cli.artifacts.files import check_output_dir

    out = check_output_dir(out)
    if out.is_dir() and any(out.iterdir()):
        raise UserInputError(f"--out {out} is not empty; export into a new or empty folder")
    return out


def _check_exporter() -> None:
    import importlib.util

    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserInputError(f"exporting to ONNX needs {' and '.join(missing)}: "
                             "pip install 'sansa-cli[onnx]'")
