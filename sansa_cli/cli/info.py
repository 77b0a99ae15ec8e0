"""``sansa info``: parameter counts, registered plugins and the device."""

from __future__ import annotations

from typing import Annotated

import typer

from sansa_cli.cli import options as opt


def info(
    sam2: opt.Sam2 = None,
    adapter: opt.AdapterName = None,
    bottleneck: opt.Bottleneck = None,
    stages: opt.Stages = None,
    rank: opt.Rank = None,
    alpha: opt.Alpha = None,
    adapter_option: opt.AdapterOptions = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show SAM2 and adapter parameter counts (total / trainable / adapter), the registered
    adapter and dataset plugins, and the device. Needs no checkpoint: counts come from a
    randomly initialised model.

    Example: sansa info --sam2 sam2.1_hiera_large --adapter adaptformer --bottleneck 0.3
    """
    from sansa_cli.core.inventory import gather, render

    options = opt.adapter_options(bottleneck, stages, rank, alpha, adapter_option)
    if options and adapter is None:
        from sansa_cli.errors import UserInputError

        raise UserInputError("adapter options were given without --adapter NAME")
    render(gather(sam2, adapter, options), as_json)
