"""What ``sansa info`` reports, gathered as plain data."""

from __future__ import annotations

import json


def gather(sam2: str | None, adapter: str | None, options: dict) -> dict:
    """Counts on a randomly initialised SAM2 (no checkpoint needed), plugins and the device."""
    import torch

    from sansa_cli import __version__, registry
    from sansa_cli.adapters.base import apply_strategy, build_strategy
    from sansa_cli.core.sam2_base import DEFAULT_SAM2, build_sam2, resolve_base
    from sansa_cli.core.device import resolve_device

    spec = resolve_base(sam2 or DEFAULT_SAM2)
    model = build_sam2(spec, "cpu")
    total = sum(p.numel() for p in model.parameters())
    report = {
        "sansa": __version__, "torch": torch.__version__, "sam2": spec.name,
        "image_size": int(model.image_size), "object_score_head": bool(model.pred_obj_scores),
        "parameters": {"total": total, "trainable": 0, "adapter": 0},
        "adapter": None,
        "plugins": {"adapters": registry.names("adapter"), "datasets": registry.names("dataset")},
        "device": str(resolve_device("auto")),
    }
    if adapter is not None:
        strategy = build_strategy(adapter, options)
        before = {id(p) for p in model.parameters()}
        trainable = apply_strategy(model, strategy)
        added = sum(p.numel() for p in model.parameters() if id(p) not in before)
        report["adapter"] = {"name": adapter, "config": json.loads(strategy.config_json())}
        report["parameters"] = {
            "total": total + added,
            "trainable": sum(p.numel() for p in trainable.values()),
            "adapter": added,
        }
    return report


def render(report: dict, as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    if as_json:
        print(json.dumps(report, indent=2))
        return
    console = Console()
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
    console.print(table)
