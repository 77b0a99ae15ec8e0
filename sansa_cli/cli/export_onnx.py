"""``sansa export-onnx``: the whole few-shot pipeline as ONNX graphs, for ``predict --onnx``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sansa_cli.cli import options as opt


def export_onnx(
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Folder to write the graphs and sansa-onnx.json into (new or "
        "empty).", show_default=False)],
    adapters: Annotated[str, typer.Option(
        "--adapters", help="Adapter file (.safetensors), 'none' for frozen SAM2, or 'default' "
        "for the authors' universal model.", show_default=False)],
    sam2: opt.Sam2 = None,
    sam2_checkpoint: opt.Sam2Checkpoint = None,
    input_profile: opt.InputProfileOpt = None,
    allow_base_mismatch: opt.AllowBaseMismatch = False,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset (17 to 23).")] = 18,
    no_merge: Annotated[bool, typer.Option(
        "--no-merge", help="Keep a LoRA adapter as a separate update instead of folding it "
        "into SAM2's weights.")] = False,
) -> None:
    r"""Export the model to ONNX: image encoder, reference memory (mask and prompt), memory
    attention and mask decoder, run without PyTorch by `sansa predict --onnx DIR`.

    Exported on the CPU in fp32; the numbers of targets, references and clicks stay dynamic.
    sansa-onnx.json records the base model, the adapter file and its hash, the input profile,
    the image size, the opset, each graph's inputs and outputs, and the versions used.
    Needs the exporter: pip install 'sansa-cli\[onnx]'.

    Example: sansa export-onnx --adapters coco-f0.safetensors --out coco-f0-onnx/
    """
    from sansa_cli.onnx.export import export_onnx as export

    manifest = export(out, adapters=adapters, sam2=sam2, sam2_checkpoint=sam2_checkpoint,
                      input_profile=list(input_profile or []),
                      allow_base_mismatch=allow_base_mismatch, opset=opset, merge=not no_merge,
                      on_graph=lambda name: typer.echo(f"exporting {name} ...", err=True))
    for path in sorted(manifest.parent.glob("*.onnx")):
        typer.echo(f"{path.name:24} {path.stat().st_size / 1e6:8.1f} MB")
    typer.echo(f"wrote {manifest.parent} (see {manifest.name})")
