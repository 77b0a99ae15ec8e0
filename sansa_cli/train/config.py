"""The training configuration: defaults, a YAML file, and command-line values on top.

Every value is checked by the same rules wherever it comes from (a flag, ``--config FILE`` or a
resumed run's ``config.yaml``): its type from the field's annotation, then its range or choices.
A bad value is one line naming the setting, where it came from, and the value.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sansa_cli.core import choices
from sansa_cli.errors import UserInputError
from sansa_cli.train import mixture

LOSSES = ("bce-dice", "focal-dice")
PRECISIONS = ("auto", *choices.PRECISIONS)


@dataclass
class TrainConfig:
    """Every setting of a training run; saved as ``RUN_DIR/config.yaml``."""

    dataset: str = ""  # a plugin, or "mix" (train/mixture.py)
    data_root: str | dict[str, str] = ""  # a folder, or one per dataset of the mix
    fold: int | str = 0  # or "all": every class, none held out
    dataset_options: dict[str, Any] = field(default_factory=dict)  # of a mix: per dataset
    mix: dict[str, float] = field(default_factory=dict)  # dataset -> weight (normalised)
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
    episodes_per_epoch: int | None = None  # default: the training images (of every dataset)
    batch_size: int = 8  # global, split across processes
    augment: bool = False
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    workers: int = 2
    save_every: int = 0  # steps between checkpoints; 0 = once per epoch
    log_every: int = 10
    progress_seconds: float = 30.0  # longest silence of the plain (non-terminal) display
    val_episodes: int = 0  # 0 = no validation
    val_shot: int = 1
    prompt: str = "mask"

    def check(self, origins: dict[str, str] | None = None) -> "TrainConfig":
        """Validate every value a user can get wrong; returns self.

        ``origins`` maps a setting to the file it came from (for the message); settings not in
        it are named as their command-line flag.
        """
        origins = origins or {}
        for name, kind in _field_types().items():
            value = getattr(self, name)
            setattr(self, name, _checked(name, value, kind, _where(name, origins.get(name))))
        if self.mix and not self.dataset:
            self.dataset = mixture.MIX
        if self.dataset == mixture.MIX:
            if not self.mix:
                raise UserInputError("--dataset mix needs --mix NAME:WEIGHT,..., e.g. --mix "
                                     "coco20i:0.45,lvis92i:0.4")
            where = _where("dataset_options", origins.get("dataset_options"))
            self.dataset_options = mixture.nested_options(self.dataset_options, list(self.mix),
                                                          where)
        elif self.mix:
            raise UserInputError(f"--mix trains on several datasets, but --dataset is "
                                 f"{self.dataset}; give --dataset mix or drop --mix")
        if not self.dataset or (self.dataset != mixture.MIX and not self.data_root):
            raise UserInputError("training needs --dataset NAME and --data-root DIR (or --dataset "
                                 "mix --mix NAME:WEIGHT,... --data-root NAME=DIR,...)")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -- the rules, one table for flags and files ---------------------------------------------------
#: the smallest value of each numeric setting (``lr`` must be above it)
MINIMUM = {"seq_len": 1, "lr": 0, "weight_decay": 0, "warmup_steps": 0,
           "grad_clip": 0, "epochs": 1, "steps": 1, "episodes_per_epoch": 1, "batch_size": 1,
           "seed": 0, "workers": 0, "save_every": 0, "log_every": 0, "progress_seconds": 0,
           "val_episodes": 0, "val_shot": 1}
EXCLUSIVE = {"lr"}
CHOICES = {"loss": LOSSES, "precision": PRECISIONS, "prompt": choices.PROMPT_TYPES}
EXAMPLES = {"lr": "1e-4", "weight_decay": "0.01", "grad_clip": "0.1", "progress_seconds": "30"}
NON_EMPTY = ("adapter", "sam2")


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


def _where(name: str, origin: str | None) -> str:
    return f"--{name.replace('_', '-')}" if origin is None else f"{name} in {origin}"


def _fold(value: Any, where: str) -> int | str:
    """A fold number (text from a flag too), or ``all``."""
    if value == mixture.ALL:
        return value
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserInputError(f"{where} is {value!r}, not a whole number or all; give one such as "
                             "0, or all (every class, none held out)")
    if value < 0:
        raise UserInputError(f"{where} is {value!r}; it must be at least 0, or all (every class: "
                             "what the release's -1 meant)")
    return value


#: settings with their own rule: name -> check(value, where) -> value
SPECIAL = {"fold": _fold, "mix": mixture.checked_mix, "data_root": mixture.checked_roots}


def _checked(name: str, value: Any, kind: Any, where: str) -> Any:
    """``value`` if it fits ``kind`` and the rules of ``name`` (floats may arrive as text)."""
    if name in SPECIAL:
        return SPECIAL[name](value, where)
    args = typing.get_args(kind)
    if type(None) in args:
        if value is None:
            return None
        kind = next(a for a in args if a is not type(None))
    base = typing.get_origin(kind) or kind
    if base is bool:
        if not isinstance(value, bool):
            raise UserInputError(f"{where} is {value!r}, not true or false; give true or false")
        return value
    if base is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise UserInputError(f"{where} is {value!r}, not a mapping of option names to "
                                 "values; give KEY: VALUE pairs")
        return value
    if base is str:
        if isinstance(value, os.PathLike):  # a path flag, or a library caller's Path
            value = os.fspath(value)
        if not isinstance(value, str):
            raise UserInputError(f"{where} is {value!r}, not text; quote it or fix the value")
        if name in CHOICES and value not in CHOICES[name]:
            raise UserInputError(f"unknown {name.replace('_', ' ')} {value!r} ({where}); use "
                                 f"one of {', '.join(CHOICES[name])}")
        if name in NON_EMPTY and not value:
            raise UserInputError(f"{where} is empty; name one (see `sansa info`)")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserInputError(f"{where} is {value!r}, not a whole number; give one such as "
                                 f"{max(MINIMUM.get(name, 0), 1)}")
    elif base is float:
        value = _number(value, where, EXAMPLES.get(name, "1.0"))
    return _in_range(name, value, where)


def _number(value: Any, where: str, example: str) -> float:
    # YAML 1.1 (PyYAML) reads `1e-4` (no dot) as text; accept any text Python reads as a number.
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserInputError(f"{where} is {value!r}, not a number; give one such as {example}")
    if not math.isfinite(value):
        raise UserInputError(f"{where} is {value!r}; give a finite number such as {example}")
    return float(value)


def _in_range(name: str, value, where: str):
    low = MINIMUM.get(name)
    if low is None:
        return value
    if name in EXCLUSIVE and not value > low:
        raise UserInputError(f"{where} is {value!r}; it must be above {low}")
    if value < low:
        raise UserInputError(f"{where} is {value!r}; it must be at least {low}")
    return value


# -- reading and writing -------------------------------------------------------------------------
def load_config(path: str | Path | None, overrides: dict[str, Any]) -> TrainConfig:
    """Defaults, then the YAML file's values, then ``overrides`` (CLI flags that were given)."""
    import yaml

    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise UserInputError(f"config file {path} does not exist; check --config")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            reason = " ".join(str(exc).split())
            raise UserInputError(f"config file {path} is not valid YAML ({reason})") from exc
        if not isinstance(values, dict):
            raise UserInputError(f"config file {path} must hold a mapping of settings")
        origins = {str(k): str(path) for k in values}
    given = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(values.get("data_root"), dict) and isinstance(given.get("data_root"), dict):
        given["data_root"] = {**values["data_root"], **given["data_root"]}  # NAME=DIR adds
    same_adapter = given.get("adapter", values.get("adapter")) == values.get("adapter")
    for key in ("adapter_options", "dataset_options"):  # a flag sets its key, keeps the rest
        if (isinstance(values.get(key), dict) and isinstance(given.get(key), dict)
                and (key == "dataset_options" or same_adapter)):
            given[key] = {**values[key], **given[key]}
    values.update(given)
    for key in given:
        origins.pop(key, None)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(str(k) for k in set(values) - known)
    if unknown:
        where = f" in {path}" if path is not None else ""
        raise UserInputError(f"unknown training settings {', '.join(unknown)}{where}; known: "
                             f"{', '.join(sorted(known))}")
    config = TrainConfig(**values).check(origins)
    for key in ("data_root", "sam2_checkpoint", "sam2"):  # runs resume from anywhere
        value = getattr(config, key)
        if isinstance(value, dict):
            setattr(config, key, {k: _absolute(v) for k, v in value.items()})
        elif value and (key != "sam2" or value.endswith((".yaml", ".yml"))):
            setattr(config, key, _absolute(value))
    return config


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def save_config(config: TrainConfig, path: Path) -> None:
    import yaml

    from sansa_cli.artifacts.files import write_bytes_atomic

    write_bytes_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=True).encode())
