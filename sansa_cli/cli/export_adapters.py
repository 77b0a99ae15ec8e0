"""``sansa export-adapters``: training checkpoints and official releases -> adapter files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sansa_cli.cli.options import Sam2Checkpoint, Storage


def export_adapters(
    source: Annotated[Optional[Path], typer.Argument(
        help="A training run directory (reads checkpoints/latest.pt) or a checkpoint file.",
        show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Adapter file to write (.safetensors).", show_default=False)] = None,
    best: Annotated[bool, typer.Option(
        "--best", help="Export checkpoints/best.pt instead of latest.pt.")] = False,
    from_official: Annotated[Optional[Path], typer.Option(
        "--from-official", help="Convert an adapter .pth released by the SANSA authors.",
        show_default=False)] = None,
    sam2: Annotated[Optional[str], typer.Option(
        "--sam2", help="With --from-official: the SAM2 the adapters were trained on (a stock "
        "name: sam2_hiera_* for SAM 2.0, sam2.1_hiera_* or tiny|small|base_plus|large for "
        "SAM 2.1; or a SAM2 YAML). Default: the SAM 2.0 Hiera size the adapter shapes fit.",
        show_default=False)] = None,
    info: Annotated[Optional[Path], typer.Option(
        "--info", help="Print an adapter file's metadata and parameter count, and exit.",
        show_default=False)] = None,
    dtype: Annotated[Storage, typer.Option(
        "--dtype", help="Storage precision of the tensors (loading casts back).")] = Storage.fp32,
    merge_lora: Annotated[bool, typer.Option(
        "--merge-lora", help="Fold a LoRA adapter into its base weights; writes the merged "
        "attention weights (a 'qkv' adapter file). Needs the base SAM2 checkpoint.")] = False,
    sam2_checkpoint: Sam2Checkpoint = None,
) -> None:
    """Write a self-describing adapter file, or describe one.

    Examples:
      sansa export-adapters runs/coco-f0 --out coco-f0.safetensors
      sansa export-adapters --from-official adapter_coco_fold0.pth --out coco-f0.safetensors
      sansa export-adapters --from-official mine.pth --sam2 sam2_hiera_small --out s.safetensors
      sansa export-adapters --info coco-f0.safetensors
    """
    from sansa_cli.errors import UserInputError

    given = [name for name, value in (("SOURCE", source), ("--from-official", from_official),
                                      ("--info", info)) if value is not None]
    if len(given) != 1:
        raise UserInputError(
            f"give exactly one of SOURCE, --from-official FILE or --info FILE "
            f"({'none' if not given else ' and '.join(given)} given)"
        )
    if sam2 is not None and from_official is None:
        raise UserInputError(f"--sam2 {sam2} applies to --from-official only; a training "
                             "checkpoint and an adapter file name their own base model")
    if info is not None:
        from sansa_cli.artifacts.adapter_file import describe

        typer.echo(describe(info))
        return
    if out is None:
        raise UserInputError("--out FILE.safetensors is required to write an adapter file")
    if out.suffix != ".safetensors":
        raise UserInputError(f"--out {out} must end in .safetensors")
    from sansa_cli.artifacts.files import check_output_dir

    check_output_dir(out.parent, "--out")  # before any conversion or model build
    if out.is_dir():
        raise UserInputError(f"--out {out} is a folder; give the adapter file's name")
    if from_official is not None:
        if merge_lora:
            raise UserInputError("--merge-lora applies to LoRA training checkpoints, not "
                                 "official releases (they are AdaptFormer adapters)")
        from sansa_cli.artifacts.official import convert_official

        written = convert_official(from_official, out, base_model=sam2, dtype=dtype.value)
    else:
        from sansa_cli.artifacts.train_checkpoint import export_training_checkpoint

        written = export_training_checkpoint(source, out, best=best, dtype=dtype.value,
                                             merge=merge_lora,
                                             sam2_checkpoint=sam2_checkpoint)
    from sansa_cli.artifacts.adapter_file import describe

    typer.echo(f"wrote {written}")
    typer.echo(describe(written))
