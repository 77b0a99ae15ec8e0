"""Convert the SANSA authors' released adapter checkpoints (``.pth``) into adapter files.

The release files are legacy ``torch.save`` pickles: ``{'model': adapter tensors, 'args':
argparse.Namespace, 'optimizer', 'lr_scheduler', 'epoch'}`` with keys such as
``sam.image_encoder.trunk.blocks.8.adapter.adapter_layer_norm_before.weight``. They are read with
``torch.load(weights_only=True)`` and an allow-list of exactly one class (``argparse.Namespace``),
so no arbitrary code runs (:func:`sansa_cli.artifacts.weights.load_torch_file`), and NaN or
infinite weights are refused. The base SAM2's Hiera size (SAM 2.0 tiny, small, base_plus or
large, unless named) and the bottleneck ratio are inferred from the tensor shapes and verified on
every block; the adapter file records that base model with the release's settings (no
object-score head, plain instantiate), its architecture fingerprint and the release's image
resizing, so predictions match the release.
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
from sansa_cli.core.input_profile import RELEASE
from sansa_cli.errors import AdapterFileError, MissingFileError

RELEASE_BASE_MODEL = "sam2_hiera_large"
#: the sizes a release file's base is inferred among (SAM 2.1 has the same Hiera layouts)
HIERA_SIZES = ("sam2_hiera_tiny", "sam2_hiera_small", "sam2_hiera_base_plus", "sam2_hiera_large")
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
        f"no single bottleneck ratio r gives the adapter widths found as int(block dim * r) "
        f"({shown}, ...)"
    )


def read_state(state: dict) -> tuple[dict, dict[int, tuple[int, int]]]:
    """The release's tensors under stock paths, and ``{block: (width, dim_out)}`` from each
    block's ``down_proj.weight``; checks what holds for any base (keys, each block's six tensors
    agreeing with one another)."""
    tensors = {}
    for key, value in state.items():
        match = _KEY.fullmatch(key)
        if match is None or not hasattr(value, "shape"):
            raise AdapterFileError(
                f"official checkpoint key {key!r} is not an AdaptFormer tensor; expected keys "
                "like sam.image_encoder.trunk.blocks.8.adapter.down_proj.weight"
            )
        name = f"image_encoder.trunk.blocks.{match[1]}.adapter.{_RENAME[match[2]]}.{match[3]}"
        tensors[name] = value
    if not tensors:
        raise AdapterFileError("official checkpoint holds no adapter tensors under 'model'")
    blocks = sorted({int(k.split(".")[3]) for k in tensors})
    return tensors, {i: _block_shape(tensors, i) for i in blocks}


def _block_shape(tensors: dict, i: int) -> tuple[int, int]:
    prefix = f"image_encoder.trunk.blocks.{i}.adapter."
    down = tuple(tensors[prefix + "down_proj.weight"].shape) \
        if prefix + "down_proj.weight" in tensors else None
    if down is None or len(down) != 2:
        raise AdapterFileError(
            f"official checkpoint tensor for {prefix}down_proj.weight has shape {down}, expected "
            "(width, dim_out); the file is damaged or incomplete"
        )
    w, d = down
    expected = {"norm.weight": (d,), "norm.bias": (d,), "down_proj.bias": (w,),
                "up_proj.weight": (d, w), "up_proj.bias": (d,)}
    for part, shape in expected.items():
        found = tuple(tensors[prefix + part].shape) if prefix + part in tensors else None
        if found != shape:
            raise AdapterFileError(
                f"official checkpoint tensor for {prefix}{part} has shape {found}, expected "
                f"{shape} (down_proj.weight is {down}); the file is damaged or incomplete"
            )
    return w, d


def fit_base(shapes: dict[int, tuple[int, int]], dims: list[tuple[int, int]],
             stage_ends: list[int], hint: float | None = None) -> dict[str, Any]:
    """The AdaptFormer config that puts adapters of ``shapes`` (``{block: (width, dim_out)}``)
    on a Hiera with ``dims`` and ``stage_ends``. Checks, in order, each an
    :class:`AdapterFileError` saying only what does not fit (callers add the fix): the blocks
    exist, ``dim_out`` matches, the blocks form whole stages, one ratio explains every width."""
    for i, (width, dim_out) in sorted(shapes.items()):
        if i >= len(dims):
            raise AdapterFileError(f"it has an adapter on block {i}, but the Hiera has "
                                   f"{len(dims)} blocks")
        if dim_out != dims[i][1]:
            raise AdapterFileError(f"block {i}'s down_proj.weight has shape ({width}, {dim_out}), "
                                   f"expected (width, {dims[i][1]})")
    stages = _stages(sorted(shapes), stage_ends)
    ratio = infer_ratio({i: w for i, (w, _) in shapes.items()}, dims, hint)
    return {"bottleneck": ratio, "stages": stages, "scale": 0.1}


def _stages(blocks: list[int], stage_ends: list[int]) -> list[int]:
    starts = [0] + [e + 1 for e in stage_ends[:-1]]
    stages = sorted({next(s for s, end in enumerate(stage_ends) if i <= end) for i in blocks})
    full = [i for s in stages for i in range(starts[s], stage_ends[s] + 1)]
    if full != blocks:
        raise AdapterFileError(
            f"its adapters on blocks {_span(blocks)} ({len(blocks)} blocks) are not whole Hiera "
            f"stages (stages {stages} have {len(full)} blocks)"
        )
    return stages


def _span(blocks) -> str:
    blocks = sorted(blocks)
    return f"{blocks[0]}..{blocks[-1]}"


def infer_base(shapes: dict[int, tuple[int, int]],
               hint: float | None = None) -> tuple[str, dict[str, Any]]:
    """``(name, AdaptFormer config)`` of the one SAM 2.0 Hiera size (:data:`HIERA_SIZES`)
    that :func:`fit_base` accepts for ``shapes``, from the configs alone (no model is built).

    No fit is an :class:`AdapterFileError` naming the first mismatch on the closest size (the
    one whose ``dim_out`` matches the most adapted blocks; the smaller on a tie); several fits
    (adapters only on stages the sizes share) is one asking for ``--sam2``.
    """
    fits, misfits = {}, {}
    for name in HIERA_SIZES:
        dims, stage_ends = hiera_blocks(name)
        try:
            fits[name] = fit_base(shapes, dims, stage_ends, hint)
        except AdapterFileError as exc:
            matching = sum(i < len(dims) and d == dims[i][1] for i, (_, d) in shapes.items())
            misfits[name] = (matching, str(exc))
    if len(fits) == 1:
        return next(iter(fits.items()))
    if fits:
        raise AdapterFileError(
            f"official checkpoint's adapters on blocks {_span(shapes)} fit {' and '.join(fits)} "
            f"alike; name the base it was trained on with --sam2, e.g. --sam2 {next(iter(fits))}"
        )
    closest = max(misfits, key=lambda name: misfits[name][0])
    raise AdapterFileError(
        f"official checkpoint fits no SAM 2.0 Hiera size ({', '.join(HIERA_SIZES)}); closest is "
        f"{closest}: {misfits[closest][1]}; the file is damaged or not a SANSA AdaptFormer "
        "release, or pass --sam2 with the SAM2 config it was trained on"
    )


def fit_named_base(shapes: dict[int, tuple[int, int]], base_model: str,
                   hint: float | None = None) -> dict[str, Any]:
    """:func:`fit_base` on ``base_model``'s Hiera (a stock name or a YAML path); a misfit is
    one line naming the base and the shapes."""
    try:
        return fit_base(shapes, *hiera_blocks(base_model), hint)
    except AdapterFileError as exc:
        raise AdapterFileError(
            f"official checkpoint does not fit {base_model}: {exc}; name the SAM2 it was trained "
            "on with --sam2, or leave --sam2 out to infer the SAM 2.0 Hiera size"
        ) from exc


def convert_official(src: str | Path, out: str | Path, base_model: str | None = None,
                     dtype: str | None = None) -> Path:
    """Convert a released ``.pth`` into a sansa adapter file at ``out``.

    ``base_model`` is the SAM2 the adapters were trained on (a stock name, a short SAM 2.1
    name such as ``tiny``, or a YAML path); by default it is inferred from the tensor shapes
    among the SAM 2.0 Hiera sizes (:func:`infer_base`). The file records it and its
    architecture fingerprint (built once, with random weights), so it loads only into that
    SAM2; the release names no base checkpoint, so none is hashed.
    """
    from sansa_cli.artifacts.adapter_file import (
        AdapterInfo,
        make_strategy,
        save_adapter_file,
    )
    from sansa_cli.core.choices import expand_sam2_name
    from sansa_cli.core.sam2_base import base_fingerprint

    blob = load_official(src)
    tensors, shapes = read_state(blob["model"])
    hint = getattr(blob.get("args"), "channel_factor", None)
    hint = hint if isinstance(hint, (int, float)) else None
    if base_model is None:
        base_model, config = infer_base(shapes, hint)
        base_source = "inferred from the adapter shapes"
    else:
        base_model = expand_sam2_name(base_model)
        config = fit_named_base(shapes, base_model, hint)
        base_source = "named at conversion"
    strategy = make_strategy("adaptformer", config, f"official checkpoint {src}")
    info = AdapterInfo(
        strategy="adaptformer", config=json.loads(strategy.config_json()), base_model=base_model,
        base_overrides=dict(RELEASE_OVERRIDES),
        extra={"image_resize": RELEASE_IMAGE_RESIZE, "source": f"official {Path(src).name}",
               "source_sha256": _sha256(src), "epoch": str(blob.get("epoch", "")),
               "base_model_source": base_source},
        base_fingerprint=base_fingerprint(base_model, RELEASE_OVERRIDES),
        input_profile=RELEASE,  # the release's resize, mask rule, memory precision, loaders
    )
    return save_adapter_file(out, tensors, info, dtype)


def _sha256(path: str | Path) -> str:
    # Plain hashing: no cache file is written next to the user's download.
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()
