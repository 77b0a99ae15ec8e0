"""What ``sansa info`` reports, gathered as plain data: parameter counts, plugins, the device."""

from __future__ import annotations


def gather(sam2: str | None, adapter: str | None, options: dict) -> dict:
    """Counts on a randomly initialised SAM2 (no checkpoint needed), plugins and the device."""
    import torch

    from sansa_cli import __version__, registry
    from sansa_cli.adapters.base import build_strategy
    from sansa_cli.core.assemble import build_model
    from sansa_cli.core.device import resolve_device

    strategy = build_strategy(adapter, options) if adapter is not None else None
    built = build_model(sam2, weights=False, strategy=strategy)
    total = sum(p.numel() for p in built.sam.parameters())
    report = {
        "sansa": __version__, "torch": torch.__version__, "sam2": built.spec.name,
        "image_size": int(built.sam.image_size),
        "object_score_head": bool(built.sam.pred_obj_scores),
        "parameters": {"total": total,
                       "trainable": sum(p.numel() for p in built.trainable.values()),
                       "adapter": total - built.base_parameters},
        "adapter": None if strategy is None else {"name": adapter,
                                                  "config": strategy.config_dict()},
        "plugins": {"adapters": registry.names("adapter"), "datasets": registry.names("dataset")},
        "device": str(resolve_device("auto")),
    }
    return report
