"""The Python API: ``load_model`` gives a ready few-shot model.

>>> from sansa_cli import load_model
>>> model = load_model(sam2="sam2.1_hiera_large", adapters="adapters.safetensors", device="auto")
>>> results = model.predict(references=[("ref.jpg", "ref_mask.png")], targets=["a.jpg", "b.jpg"])
"""

from __future__ import annotations

from pathlib import Path

from sansa_cli.errors import UserInputError


def load_model(sam2: str | None = None, sam2_checkpoint: str | Path | None = None,
               adapters: str | Path = "default", device: str = "auto",
               precision: str = "fp32", batch_size: int | None = None, download: bool = True,
               allow_base_mismatch: bool = False, input_profile=None, warn=None, **renamed):
    """Build SAM2, load its checkpoint strictly, layer adapters on it, and wrap it for inference.

    Args:
        sam2: stock SAM2 name or a SAM2 YAML path. Default: the adapter file's base model, else
            ``sam2.1_hiera_large``.
        sam2_checkpoint: SAM2 checkpoint; default ``checkpoints/<name>.pt`` (downloaded if
            missing), as ``--sam2-checkpoint``.
        adapters: as ``--adapters``: ``"default"`` (the authors' universal model, fetched and
            converted on first use), ``"none"`` (frozen SAM2) or an adapter ``.safetensors``
            file.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast), or ``auto``: bf16 on GPUs (fp16
            where bf16 is not native, and on Apple MPS), on CPUs bf16 only where the CPU has
            native bf16 (AVX512-BF16 or AMX), else fp32. The model's ``precision`` is the one
            used. bf16/fp16 on a CPU without native bf16 warns (it is several times slower).
        warn: called with a one-line warning (default: printed to stderr).
        batch_size: how many frames go through the image encoder at once (default: 1 on the
            CPU, where larger batches measured no faster, and 4 on accelerators).
        download: fetch a missing stock checkpoint from Meta's public host.
        allow_base_mismatch: accept adapters trained on a different base checkpoint.
        input_profile: how images and reference masks are fed and memory is kept
            (:mod:`sansa_cli.core.input_profile`): default the adapter file's profile (recorded,
            or inferred for older files), SAM2's video predictor's for frozen SAM2. An
            ``InputProfile`` replaces it; a list of ``--input-profile`` values (a preset name or
            ``KEY=VALUE``) changes it, for experiments.
    Returns:
        a :class:`sansa_cli.core.segmenter.SansaModel`.
    """
    from sansa_cli.core.assemble import build_model
    from sansa_cli.core.device import resolve_device, resolve_precision
    from sansa_cli.core.input_profile import VIDEO_PREDICTOR, InputProfile, apply_profile_options
    from sansa_cli.core.segmenter import SansaModel

    if renamed:
        _refuse_renamed(renamed)
    torch_device = resolve_device(device)
    if batch_size is None:
        batch_size = 1 if torch_device.type == "cpu" else 4
    if batch_size < 1:
        raise UserInputError(f"batch size {batch_size} must be at least 1")
    precision = resolve_precision(precision, torch_device, warn or _warn)
    if not isinstance(input_profile, InputProfile):
        apply_profile_options(VIDEO_PREDICTOR, input_profile)  # bad options fail before work
    adapter_file = resolve_adapters(adapters, download)
    built = build_model(sam2, checkpoint=sam2_checkpoint, download=download, adapters=adapter_file,
                        device=torch_device, allow_base_mismatch=allow_base_mismatch)
    profile = built.adapter_info.profile()[0] if built.adapter_info else VIDEO_PREDICTOR
    if isinstance(input_profile, InputProfile):
        profile = input_profile
    else:
        profile = apply_profile_options(profile, input_profile)
    return SansaModel(built.sam, torch_device, precision, profile, built.strategy,
                      built.spec.name, batch_size, adapter_file)


def _warn(message: str) -> None:
    import sys

    print(f"warning: {message}", file=sys.stderr)


def resolve_adapters(adapters: str | Path, download: bool = True) -> Path | None:
    """The adapter file ``adapters`` names: ``"default"`` -> the universal adapter (made on
    first use), ``"none"`` -> None (frozen SAM2), anything else -> that path."""
    if adapters is None:
        raise UserInputError("adapters=None is not a choice; use adapters='none' for frozen SAM2, "
                             "'default' for the universal model, or a file")
    if str(adapters).lower() == "none":
        return None
    if str(adapters).lower() == "default":
        from sansa_cli.artifacts.universal_adapter import ensure_default_adapters

        return ensure_default_adapters(download=download)
    return Path(adapters)


_RENAMED = {"checkpoint": "sam2_checkpoint"}


def _refuse_renamed(given: dict) -> None:
    name = sorted(given)[0]
    if name in _RENAMED:
        raise UserInputError(f"load_model({name}=...) is now load_model({_RENAMED[name]}=...), "
                             f"as the --{_RENAMED[name].replace('_', '-')} option")
    raise TypeError(f"load_model() got an unexpected keyword argument {name!r}")
