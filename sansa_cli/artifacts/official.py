"""Convert the SANSA authors' released adapter checkpoints (``.pth``) into adapter files.

The release files are legacy ``torch.save`` pickles: ``{'model': adapter tensors, 'args':
argparse.Namespace, 'optimizer', 'lr_scheduler', 'epoch'}`` with keys such as
``sam.image_encoder.trunk.blocks.8.adapter.adapter_layer_norm_before.weight``. They are read with
``torch.load(weights_only=True)`` and an allow-list of exactly one class (``argparse.Namespace``),
so no arbitrary code runs (:func:`sansa_cli.artifacts.weights.load_torch_file`), and NaN or
infinite weights are refused. The bottleneck ratio is inferred from the tensor shapes and verified
on every block; the adapter file records the release's base model (SAM 2.0 Hiera-L without the
object-score head, plain instantiate), its architecture fingerprint and its image resizing, so
predictions match the release.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from sansa_cli.core.sam2_base import RELEASE_SETTINGS
from sansa_cli.errors import AdapterFileError, MissingFileError

RELEASE_BASE_MODEL = "sam2_hiera_large"
# The release instantiates the SAM 2.0 config without the object-score head and without the
# video-predictor settings; these override sansa's defaults when the file is loaded.
RELEASE_OVERRIDES: dict[str, Any] = {
    **RELEASE_SETTINGS,
    "model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability": False,
    "model.binarize_mask_from_pts_for_mem_enc": False,
}
RELEASE_IMAGE_RESIZE = "antialias-bilinear"

_KEY = re.compile(
    r"(?:module\.)?sam\.image_encoder\.trunk\.blocks\.(\d+)\.adapter\."
    r"(adapter_layer_norm_before|down_proj|up_proj)\.(weight|bias)"
)
_RENAME = {"adapter_layer_norm_before": "norm", "down_proj": "down_proj", "up_proj": "up_proj"}


def load_official(path: str | Path) -> dict:
    """The release dict, unpickled with ``weights_only=True`` and ``argparse.Namespace`` allowed;
    NaN or infinite adapter weights are refused."""
    from sansa_cli.artifacts.weights import check_finite, load_torch_file

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"official checkpoint {path} does not exist; check --from-official")
    blob = load_torch_file(
        path, "official checkpoint", AdapterFileError,
        "it is corrupt, truncated, or holds objects other than tensors and argparse.Namespace",
        allowed=[argparse.Namespace])
    if not isinstance(blob, dict) or not isinstance(blob.get("model"), dict):
        raise AdapterFileError(
            f"{path} is not an official SANSA checkpoint (expected a dict with a 'model' dict of "
            "adapter tensors)"
        )
    check_finite(blob["model"], path, "official checkpoint", AdapterFileError,
                 "the file is damaged: download it again")
    return blob


def hiera_blocks(base_model: str) -> tuple[list[tuple[int, int]], list[int]]:
    """``([(dim, dim_out) per block], stage_ends)`` of a SAM2's Hiera, from its config alone
    (no model is built; Hiera-L: 48 blocks, stage ends 1, 7, 43, 47)."""
    from sansa_cli.core.sam2_base import compose_config, resolve_base

    trunk = compose_config(resolve_base(base_model)).model.image_encoder.trunk
    embed_dim = int(trunk.get("embed_dim", 96))
    stages = list(trunk.get("stages", (2, 3, 16, 3)))
    return block_dims(embed_dim, stages, float(trunk.get("dim_mul", 2.0))), \
        [sum(stages[: i + 1]) - 1 for i in range(len(stages))]


def block_dims(embed_dim: int, stages: list[int], dim_mul: float = 2.0) -> list[tuple[int, int]]:
    """(dim, dim_out) of every Hiera block, following Hiera's constructor."""
    ends = {sum(stages[: i + 1]) - 1 for i in range(len(stages))}
    dims = []
    for i in range(sum(stages)):
        dim_out = int(embed_dim * dim_mul) if i - 1 in ends else embed_dim
        dims.append((embed_dim, dim_out))
        embed_dim = dim_out
    return dims


def infer_ratio(widths: dict[int, int], dims: list[tuple[int, int]],
                hint: float | None = None) -> float:
    """The bottleneck ratio ``r`` with ``int(dim * r) == width`` on every block (shortest
    decimal; ``hint``, e.g. the release's ``channel_factor``, is tried first)."""
    def fits(r: float) -> bool:
        return all(int(dims[i][0] * r) == w for i, w in widths.items())

    if hint is not None and fits(float(hint)):
        return float(hint)
    low = max(w / dims[i][0] for i, w in widths.items())
    for decimals in range(1, 7):
        scale = 10 ** decimals
        start = math.ceil(low * scale - 1e-6)
        for step in (start, start + 1):
            if fits(step / scale):
                return step / scale
    shown = ", ".join(f"block {i}: {w} of {dims[i][0]}" for i, w in sorted(widths.items())[:4])
    raise AdapterFileError(
        f"no single bottleneck ratio gives the adapter widths found ({shown}, ...); expected "
        "int(block dim * ratio) on every block: the file is not a SANSA AdaptFormer release"
    )


def convert_state(state: dict, dims: list[tuple[int, int]], stage_ends: list[int],
                  hint: float | None = None) -> tuple[dict, dict[str, Any]]:
    """Rename the release's tensors to stock paths; return ``(tensors, adaptformer config)``."""
    tensors, shapes = {}, {}
    for key, value in state.items():
        match = _KEY.fullmatch(key)
        if match is None or not hasattr(value, "shape"):
            raise AdapterFileError(
                f"official checkpoint key {key!r} is not an AdaptFormer tensor; expected keys "
                "like sam.image_encoder.trunk.blocks.8.adapter.down_proj.weight"
            )
        index, part, kind = int(match[1]), _RENAME[match[2]], match[3]
        if index >= len(dims):
            raise AdapterFileError(
                f"official checkpoint has an adapter on block {index}, but the base model has "
                f"{len(dims)} blocks; convert it for {RELEASE_BASE_MODEL}"
            )
        name = f"image_encoder.trunk.blocks.{index}.adapter.{part}.{kind}"
        tensors[name], shapes[name] = value, tuple(value.shape)
    if not tensors:
        raise AdapterFileError("official checkpoint holds no adapter tensors under 'model'")
    blocks = sorted({int(k.split(".")[3]) for k in tensors})
    widths = {}
    for i in blocks:
        down = shapes.get(f"image_encoder.trunk.blocks.{i}.adapter.down_proj.weight")
        if down is None or len(down) != 2 or down[1] != dims[i][1]:
            raise AdapterFileError(
                f"official checkpoint: block {i}'s down_proj.weight has shape {down}, expected "
                f"(width, {dims[i][1]}) for this base model; was it made for another SAM2 size?"
            )
        widths[i] = down[0]
    ratio = infer_ratio(widths, dims, hint)
    _check_shapes(shapes, blocks, dims, widths)
    return tensors, {"bottleneck": ratio, "stages": _stages(blocks, stage_ends), "scale": 0.1}


def _check_shapes(shapes: dict, blocks: list[int], dims, widths: dict[int, int]) -> None:
    for i in blocks:
        d, w = dims[i][1], widths[i]
        expected = {"norm.weight": (d,), "norm.bias": (d,), "down_proj.weight": (w, d),
                    "down_proj.bias": (w,), "up_proj.weight": (d, w), "up_proj.bias": (d,)}
        for part, shape in expected.items():
            key = f"image_encoder.trunk.blocks.{i}.adapter.{part}"
            if shapes.get(key) != shape:
                raise AdapterFileError(
                    f"official checkpoint tensor for {key} has shape {shapes.get(key)}, expected "
                    f"{shape} (bottleneck width {w}); the file is damaged or incomplete"
                )


def _stages(blocks: list[int], stage_ends: list[int]) -> list[int]:
    starts = [0] + [e + 1 for e in stage_ends[:-1]]
    stages = sorted({next(s for s, end in enumerate(stage_ends) if i <= end) for i in blocks})
    full = [i for s in stages for i in range(starts[s], stage_ends[s] + 1)]
    if full != blocks:
        raise AdapterFileError(
            f"official checkpoint has adapters on blocks {blocks[0]}..{blocks[-1]} "
            f"({len(blocks)} blocks), which is not whole Hiera stages (stages {stages} have "
            f"{len(full)} blocks); the file is incomplete"
        )
    return stages


def convert_official(src: str | Path, out: str | Path, base_model: str = RELEASE_BASE_MODEL,
                     dtype: str | None = None) -> Path:
    """Convert a released ``.pth`` into a sansa adapter file at ``out``.

    The file records ``base_model``'s architecture fingerprint (built with random weights), so it
    loads only into that SAM2; the release names no base checkpoint, so none is hashed.
    """
    from sansa_cli.artifacts.adapter_file import (
        AdapterInfo,
        make_strategy,
        save_adapter_file,
    )
    from sansa_cli.core.sam2_base import base_fingerprint

    blob = load_official(src)
    dims, stage_ends = hiera_blocks(base_model)
    hint = getattr(blob.get("args"), "channel_factor", None)
    tensors, config = convert_state(blob["model"], dims, stage_ends,
                                    hint if isinstance(hint, (int, float)) else None)
    strategy = make_strategy("adaptformer", config, f"official checkpoint {src}")
    info = AdapterInfo(
        strategy="adaptformer", config=json.loads(strategy.config_json()), base_model=base_model,
        base_overrides=dict(RELEASE_OVERRIDES),
        extra={"image_resize": RELEASE_IMAGE_RESIZE, "source": f"official {Path(src).name}",
               "source_sha256": _sha256(src), "epoch": str(blob.get("epoch", ""))},
        base_fingerprint=base_fingerprint(base_model, RELEASE_OVERRIDES),
    )
    return save_adapter_file(out, tensors, info, dtype)


def _sha256(path: str | Path) -> str:
    # Plain hashing: no cache file is written next to the user's download.
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()
