"""Build a stock SAM2 from the ``sam2`` package: a stock config name or a user's YAML.

Nothing here patches sam2: configs are composed with Hydra (stock names) or read with OmegaConf
(paths), a few documented settings are overridden, and the model is instantiated as is. A YAML
is code (Hydra instantiates its ``_target_``s); settings read from files are limited to
:data:`FILE_SETTING_TYPES`. :func:`architecture_fingerprint` identifies a built SAM2's
architecture, so adapter files can tell the SAM2 they were made for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sansa_cli.errors import AdapterFileError, CheckpointError, MissingFileError, UserInputError

# Stock names -> (config inside the sam2 package, checkpoint file, release folder on Meta's host).
STOCK_MODELS: dict[str, tuple[str, str, str]] = {
    "sam2.1_hiera_tiny": ("configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny.pt", "092824"),
    "sam2.1_hiera_small": ("configs/sam2.1/sam2.1_hiera_s.yaml", "sam2.1_hiera_small.pt", "092824"),
    "sam2.1_hiera_base_plus": (
        "configs/sam2.1/sam2.1_hiera_b+.yaml", "sam2.1_hiera_base_plus.pt", "092824"),
    "sam2.1_hiera_large": ("configs/sam2.1/sam2.1_hiera_l.yaml", "sam2.1_hiera_large.pt", "092824"),
    "sam2_hiera_tiny": ("configs/sam2/sam2_hiera_t.yaml", "sam2_hiera_tiny.pt", "072824"),
    "sam2_hiera_small": ("configs/sam2/sam2_hiera_s.yaml", "sam2_hiera_small.pt", "072824"),
    "sam2_hiera_base_plus": (
        "configs/sam2/sam2_hiera_b+.yaml", "sam2_hiera_base_plus.pt", "072824"),
    "sam2_hiera_large": ("configs/sam2/sam2_hiera_l.yaml", "sam2_hiera_large.pt", "072824"),
}
DEFAULT_SAM2 = "sam2.1_hiera_large"

# What sam2's own video-predictor builder switches on for inference. The single-mask decoder falls
# back to multimask when unstable (it shapes a reference's object pointer), and prompted masks are
# binarized before the memory encoder. Parity with SAM2VideoPredictor needs both.
VIDEO_PREDICTOR_SETTINGS: dict[str, Any] = {
    "model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability": True,
    "model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta": 0.05,
    "model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh": 0.98,
    "model.binarize_mask_from_pts_for_mem_enc": True,
}


# The SANSA authors' base: SAM2 with its object-score head switched off. A checkpoint's head
# weights are then deliberately left unused (see load_checkpoint).
RELEASE_SETTINGS: dict[str, Any] = {
    "model.pred_obj_scores": False,
    "model.pred_obj_scores_mlp": False,
    "model.fixed_no_obj_ptr": False,
}
OBJECT_SCORE_KEYS = ("no_obj_ptr", "sam_mask_decoder.obj_score_token.",
                     "sam_mask_decoder.pred_obj_score_head.")

# The SAM2 settings a file (an adapter file's or a training checkpoint's base_overrides) may
# carry, with the type of each value: exactly the settings sansa itself writes. The merged config
# is instantiated by Hydra, so any other key (a `_target_`, a module's arguments) could make
# loading a file run code; such files are refused.
FILE_SETTING_TYPES: dict[str, type] = {
    key: bool if isinstance(value, bool) else float
    for key, value in {**VIDEO_PREDICTOR_SETTINGS, **RELEASE_SETTINGS}.items()
}


def check_file_settings(overrides: Any, source: str) -> dict[str, Any]:
    """``overrides`` (the base settings read from a file) if every key is a SAM2 setting sansa
    writes (:data:`FILE_SETTING_TYPES`) with a value of its type.

    These settings are merged into the config Hydra instantiates, so anything else (a
    ``_target_``, an unknown key, a value of another type) is an
    :class:`~sansa_cli.errors.AdapterFileError` naming ``source`` and the key, raised before
    anything is built.
    """
    if not isinstance(overrides, dict):
        raise AdapterFileError(
            f"{source} has base overrides of type {type(overrides).__name__}, not a mapping of "
            "SAM2 settings; export it again")
    for key, value in overrides.items():
        kind = FILE_SETTING_TYPES.get(key) if isinstance(key, str) else None
        if kind is None:
            raise AdapterFileError(
                f"{source} sets the SAM2 setting {str(key)[:80]!r} in its base overrides, which "
                "a file may not set (only the settings sansa writes, such as "
                "model.pred_obj_scores; others could run code while loading); use a file "
                "sansa wrote, or export it again")
        if not _has_type(value, kind):
            need = "true or false" if kind is bool else "a finite number"
            raise AdapterFileError(
                f"{source} sets the SAM2 setting {key} to {repr(value)[:40]} "
                f"({type(value).__name__}), but it must be {need}; export the file again")
    return dict(overrides)


def _has_type(value: Any, kind: type) -> bool:
    import math

    if kind is bool:
        return type(value) is bool
    return type(value) in (int, float) and math.isfinite(value)


@dataclass
class BaseModelSpec:
    """Which SAM2 to build: a stock name or a YAML path, plus config overrides (dotted keys)."""

    name: str
    config_path: str | None = None  # set for a user's YAML
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def is_stock(self) -> bool:
        return self.config_path is None

    @property
    def checkpoint_filename(self) -> str:
        return STOCK_MODELS[self.name][1] if self.is_stock else f"{self.name}.pt"


def resolve_base(sam2: str, overrides: dict[str, Any] | None = None) -> BaseModelSpec:
    """Turn ``--sam2`` (a stock name, a short name such as ``tiny`` for SAM 2.1, or a YAML
    path) into a spec; unknown values are errors."""
    from sansa_cli.core.choices import expand_sam2_name

    overrides = dict(overrides or {})
    sam2 = expand_sam2_name(sam2)
    if sam2 in STOCK_MODELS:
        return BaseModelSpec(sam2, None, overrides)
    if sam2.endswith((".yaml", ".yml")) or "/" in sam2:
        path = Path(sam2).expanduser()
        if not path.is_file():
            raise MissingFileError(f"SAM2 config file {sam2} does not exist; check the path")
        return BaseModelSpec(path.stem, str(path.resolve()), overrides)
    raise UserInputError(
        f"unknown SAM2 model '{sam2}'; use one of {', '.join(STOCK_MODELS)} or a path to a "
        "SAM2 YAML"
    )


def compose_config(spec: BaseModelSpec):
    """The model's OmegaConf config with the spec's overrides applied and resolved."""
    from omegaconf import OmegaConf

    if spec.is_stock:
        import sam2  # noqa: F401  (initialises Hydra's search path for the packaged configs)
        from hydra import compose
        from hydra.core.global_hydra import GlobalHydra

        if not GlobalHydra.instance().is_initialized():
            from hydra import initialize_config_module

            initialize_config_module("sam2", version_base="1.2")
        cfg = compose(config_name=STOCK_MODELS[spec.name][0])
    else:
        try:
            cfg = OmegaConf.load(spec.config_path)
        except Exception as exc:
            raise UserInputError(
                f"SAM2 config {spec.config_path} is not valid YAML ({exc}); fix the file"
            ) from exc
        if "model" not in cfg:
            raise UserInputError(
                f"SAM2 config {spec.config_path} has no top-level 'model' key; "
                "start from one of sam2's configs"
            )
    for key, value in spec.overrides.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    OmegaConf.resolve(cfg)
    return cfg


def build_sam2(spec: BaseModelSpec, device: str = "cpu"):
    """Instantiate the SAM2 described by ``spec`` with random weights, in eval mode."""
    import torch
    from hydra.utils import instantiate

    cfg = compose_config(spec)
    try:
        model = instantiate(cfg.model, _recursive_=True)
    except Exception as exc:
        raise UserInputError(
            f"SAM2 config for '{spec.name}' could not be built ({type(exc).__name__}: {exc})"
        ) from exc
    return model.to(torch.device(device)).eval()


def load_checkpoint(model, path: str | Path) -> None:
    """Load a SAM2 checkpoint strictly; missing or unexpected keys are listed in the error.

    The file is read with :func:`sansa_cli.artifacts.weights.load_torch_file` (no code in it
    runs) and refused when a weight is NaN or infinite.
    """
    from sansa_cli.artifacts.weights import check_finite, load_torch_file

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"SAM2 checkpoint {path} does not exist; check the path")
    blob = load_torch_file(path, "SAM2 checkpoint", CheckpointError,
                           "the file is corrupt or not a PyTorch checkpoint: download it again")
    state = blob.get("model", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"SAM2 checkpoint {path} holds no state dict under 'model'")
    check_finite(state, path, "SAM2 checkpoint", CheckpointError,
                 "the file is damaged: download it again")
    expected = set(model.state_dict())
    if not getattr(model, "pred_obj_scores", True):  # the head is off by choice: skip its weights
        state = {k: v for k, v in state.items()
                 if k in expected or not k.startswith(OBJECT_SCORE_KEYS)}
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"SAM2 checkpoint {path} does not fit this model: "
            f"{_keys('missing', missing)}{'; ' if missing and unexpected else ''}"
            f"{_keys('unexpected', unexpected)}; check that --sam2 names the checkpoint's model"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(
            f"SAM2 checkpoint {path} has tensors of the wrong shape for this model "
            f"({first[-1].strip() if first else exc}); check --sam2"
        ) from exc


def architecture_fingerprint(model) -> str:
    """SHA-256 over the sorted names and shapes of a SAM2's state dict (its architecture).

    Call it on the SAM2 as built, before an adapter strategy is attached: weights, dtype and
    device do not change it; a different config (sizes, layers, heads switched on or off) does.
    """
    import hashlib

    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        digest.update(f"{name}:{','.join(map(str, value.shape))}\n".encode())
    return digest.hexdigest()


def base_fingerprint(sam2: str, file_settings: dict[str, Any]) -> str:
    """:func:`architecture_fingerprint` of the SAM2 a file names (a stock name or a YAML path),
    built as loading the file builds it: SAM2's video-predictor settings, then the file's base
    settings. Random weights; the global random state is left as it was."""
    import torch

    spec = resolve_base(sam2, {**VIDEO_PREDICTOR_SETTINGS, **file_settings})
    with torch.random.fork_rng(devices=[]):
        return architecture_fingerprint(build_sam2(spec, "cpu"))


def _keys(kind: str, keys: list[str]) -> str:
    if not keys:
        return ""
    shown = ", ".join(keys[:8])
    more = f" and {len(keys) - 8} more" if len(keys) > 8 else ""
    return f"{len(keys)} {kind} keys ({shown}{more})"


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
