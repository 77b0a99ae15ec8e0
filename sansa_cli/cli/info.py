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
    from sansa_cli.core.inventory import gather

    options = opt.adapter_options(bottleneck, stages, rank, alpha, adapter_option)
    if options and adapter is None:
        from sansa_cli.errors import UserInputError

        raise UserInputError("adapter options were given without --adapter NAME")
    render(gather(sam2, adapter, options), as_json)


def render(report: dict, as_json: bool) -> None:
    """The report as a table, or as JSON on stdout."""
    import json

    from rich.console import Console
    from rich.table import Table

    if as_json:
        print(json.dumps(report, indent=2))
        return
    table = Table(title=f"sansa {report['sansa']} · torch {report['torch']}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    counts = report["parameters"]
    table.add_row("SAM2", f"{report['sam2']} ({report['image_size']} px)")
    if report["adapter"]:
        config = ", ".join(f"{k}={v}" for k, v in report["adapter"]["config"].items())
        table.add_row("adapter", f"{report['adapter']['name']} ({config})")
    table.add_row("parameters, total", f"{counts['total']:,}")
    table.add_row("parameters, trainable", f"{counts['trainable']:,}")
    table.add_row("parameters, added by the adapter", f"{counts['adapter']:,}")
    table.add_row("adapter plugins", ", ".join(report["plugins"]["adapters"]) or "-")
    table.add_row("dataset plugins", ", ".join(report["plugins"]["datasets"]) or "-")
    table.add_row("device (auto)", report["device"])
    Console().print(table)
