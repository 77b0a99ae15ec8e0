"""The training configuration: defaults, a YAML file, and command-line values on top."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sansa_cli.core import choices
from sansa_cli.errors import UserInputError

LOSSES = ("bce-dice", "focal-dice")
PRECISIONS = ("auto", *choices.PRECISIONS)


@dataclass
class TrainConfig:
    """Every setting of a training run; saved as ``RUN_DIR/config.yaml``."""

    dataset: str = ""
    data_root: str = ""
    fold: int = 0
    dataset_options: dict[str, Any] = field(default_factory=dict)
    adapter: str = "adaptformer"
    adapter_options: dict[str, Any] = field(default_factory=dict)
    # The paper's base: SAM 2.0 Hiera-L without the object-score head.
    sam2: str = "sam2_hiera_large"
    sam2_checkpoint: str | None = None
    object_score_head: bool = False
    seq_len: int = 3
    loss: str = "bce-dice"
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    grad_clip: float = 0.1
    epochs: int = 5
    steps: int | None = None  # a step budget instead of epochs
    episodes_per_epoch: int | None = None  # default: the split's number of images
    batch_size: int = 8  # global, split across processes
    augment: bool = False
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    workers: int = 2
    save_every: int = 0  # steps between checkpoints; 0 = once per epoch
    log_every: int = 10
    val_episodes: int = 0  # 0 = no validation
    val_shot: int = 1
    prompt: str = "mask"

    def check(self) -> "TrainConfig":
        """Validate values a user can get wrong; returns self."""
        if not self.dataset or not self.data_root:
            raise UserInputError("training needs --dataset NAME and --data-root DIR")
        if self.loss not in LOSSES:
            raise UserInputError(f"unknown loss {self.loss!r}; use {' or '.join(LOSSES)}")
        if self.precision not in PRECISIONS:
            raise UserInputError(
                f"unknown precision {self.precision!r}; use {', '.join(PRECISIONS)}")
        for name in ("seq_len", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserInputError(f"{name.replace('_', '-')} must be at least 1")
        if self.steps is not None and self.steps < 1:
            raise UserInputError("--steps must be at least 1")
        if not self.lr > 0:
            raise UserInputError(f"learning rate {self.lr} must be positive")
        if self.prompt not in choices.PROMPT_TYPES:
            raise UserInputError(f"unknown --prompt {self.prompt!r}; use one of "
                                 f"{', '.join(choices.PROMPT_TYPES)}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(path: str | Path | None, overrides: dict[str, Any]) -> TrainConfig:
    """Defaults, then the YAML file's values, then ``overrides`` (CLI flags that were given)."""
    import yaml

    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise UserInputError(f"config file {path} does not exist; check --config")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UserInputError(f"config file {path} is not valid YAML ({exc})") from exc
        if not isinstance(values, dict):
            raise UserInputError(f"config file {path} must hold a mapping of settings")
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("data_root", "sam2_checkpoint", "sam2"):  # runs resume from anywhere
        value = values.get(key)
        if value is not None and (key != "sam2" or str(value).endswith((".yaml", ".yml"))):
            values[key] = str(Path(value).expanduser().resolve())
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserInputError(f"unknown training settings {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(known))}")
    return TrainConfig(**values).check()


def save_config(config: TrainConfig, path: Path) -> None:
    import yaml

    from sansa_cli.artifacts.files import write_bytes_atomic

    write_bytes_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=True).encode())
