"""``sansa visualize-features``: PCA pictures of SAM2 features, frozen and adapted."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sansa_cli.cli import options as opt


def visualize_features(
    images: Annotated[list[Path], typer.Argument(
        help="Images or folders of images (at least 2 in all: one PCA is fitted over them).",
        show_default=False)],
    out: Annotated[Path, typer.Option(
        "--out", help="Folder for <stem>_pca.png pictures (and scatter.png with --masks).",
        show_default=False)],
    masks: Annotated[Optional[list[Path]], typer.Option(
        "--masks", help="Mask files or folders, one mask per image in the images' order "
        "(repeatable). Adds scatter.png: each object's mean feature on PC1/PC2, by class.",
        show_default=False)] = None,
    classes: Annotated[Optional[str], typer.Option(
        "--classes", help="Comma-separated class name of each mask, in order. Default: the "
        "mask's folder name (masks/<class>/x.png).", show_default=False)] = None,
    adapters: Annotated[Optional[Path], typer.Option(
        "--adapters", help="Adapter file (.safetensors): adds a column with the adapted "
        "model's features beside frozen SAM2's.", show_default=False)] = None,
    sam2: opt.Sam2 = None,
    sam2_checkpoint: opt.Sam2Checkpoint = None,
    device: opt.DeviceOpt = opt.Device.auto,
    precision: opt.PrecisionOpt = opt.Precision.fp32,
    batch_size: opt.BatchSize = None,
    input_profile: opt.InputProfileOpt = None,
) -> None:
    """Colour SAM2's image features by their first 3 principal components (one joint PCA).

    With --adapters: frozen and adapted SAM2 side by side. With --masks: a scatter by class.

    Example: sansa visualize-features img/cat img/dog --masks mask/cat --masks mask/dog --out pca
    """
    from rich.console import Console

    from sansa_cli.visualize.features_pca import visualize_features as run

    written = run(images, out, masks=masks, classes=classes, adapters=adapters, sam2=sam2,
                  checkpoint=sam2_checkpoint, device=device.value, precision=precision.value,
                  batch_size=batch_size, input_profile=list(input_profile or []))
    Console().print(f"{len(written)} pictures written to {out}")
