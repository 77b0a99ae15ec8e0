"""The work behind ``sansa train``: assemble the config, then run."""

from __future__ import annotations

from pathlib import Path

from sansa_cli.core.parsing import key_values
from sansa_cli.errors import UserInputError

ADAPTER_FLAGS = ("bottleneck", "stages", "rank", "alpha", "adapter_option")
#: settings a resumed run may change: where and how it runs and shows progress, not what it trains
RESUME_FLAGS = ("device", "workers", "progress_seconds", "log_every")


def run_train(out: Path | None, resume: Path | None, config_file: Path | None, flags: dict,
              adapter_options: dict) -> Path:
    """Build the run's config (saved config on resume) and train; returns the adapter file."""
    from sansa_cli.train.config import load_config
    from sansa_cli.train.loop import Run

    if resume is not None:
        saved = resume / "config.yaml"
        if not saved.is_file():
            raise UserInputError(f"{resume} holds no config.yaml; is it a sansa run directory?")
        config = load_config(saved, {k: v for k, v in flags.items() if k in RESUME_FLAGS})
        return Run(config, resume, resume=True).train()
    overrides = {k: v for k, v in flags.items() if k not in ADAPTER_FLAGS + ("config",)}
    if "data_root" in overrides:  # one folder, or NAME=DIR pairs for a mixture
        from sansa_cli.train.mixture import parse_roots

        overrides["data_root"] = parse_roots(overrides["data_root"])
    if "dataset_option" in overrides:
        overrides["dataset_options"] = key_values(overrides.pop("dataset_option"),
                                                  "--dataset-option", "membership=fixed")
    if adapter_options:
        overrides["adapter_options"] = adapter_options
    config = load_config(config_file, overrides)
    return Run(config, out).train()
