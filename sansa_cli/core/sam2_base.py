"""Build a stock SAM2 from the ``sam2`` package: a stock config name or a user's YAML.

Nothing here patches sam2: configs are composed with Hydra (stock names) or read with OmegaConf
(paths), a few documented settings are overridden, and the model is instantiated as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sansa_cli.errors import CheckpointError, MissingFileError, UserInputError

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
    """Turn ``--sam2`` (a stock name or a YAML path) into a spec; unknown values are errors."""
    overrides = dict(overrides or {})
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
    """Load a SAM2 checkpoint strictly; missing or unexpected keys are listed in the error."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"SAM2 checkpoint {path} does not exist; check the path")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"SAM2 checkpoint {path} cannot be read ({type(exc).__name__}); "
            "the file is corrupt or not a PyTorch checkpoint: download it again"
        ) from exc
    state = blob.get("model", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"SAM2 checkpoint {path} holds no state dict under 'model'")
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


def _keys(kind: str, keys: list[str]) -> str:
    if not keys:
        return ""
    shown = ", ".join(keys[:8])
    more = f" and {len(keys) - 8} more" if len(keys) > 8 else ""
    return f"{len(keys)} {kind} keys ({shown}{more})"


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
