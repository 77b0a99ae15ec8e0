"""Input profiles: how a model's adapters expect images and reference masks to be fed.

Adapters learn on inputs prepared one way; fed another way, the same weights give (slightly)
different masks. A profile names every choice that moves the numbers:

- ``resize``: the square resize of images to the model's size (``pil-bicubic``, SAM2's video
  predictor; ``antialias-bilinear``, the SANSA authors' release);
- ``mask_rule``: which pixels of a reference mask, after its antialiased bilinear resize to the
  model's size, count as object: ``half`` (>= 0.5, SAM2's video predictor) or ``any`` (> 0, the
  release: the antialiasing spill is object too);
- ``memory_dtype``: the precision memory features are kept in (``bf16`` as SAM2's video
  predictor, ``fp32`` as the release and as sansa's training);
- ``pre_resize``: for evaluation only, whether images are first resized to the dataset's canvas
  (masks nearest) before the model's own resize, as the release's benchmark loaders do.

Adapter files record their profile (metadata ``input_profile``); files written before profiles
existed get one inferred from what they record (:func:`infer_profile`). Nothing here imports
torch, so the CLI can show profiles cheaply.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from sansa_cli.core.choices import RESIZE_MODES
from sansa_cli.errors import UserInputError

MASK_RULES = ("half", "any")
MEMORY_DTYPES = ("bf16", "fp32")


@dataclass(frozen=True)
class InputProfile:
    """How images and reference masks are prepared, and memory is kept (see the module doc)."""

    resize: str = "pil-bicubic"
    mask_rule: str = "half"
    memory_dtype: str = "bf16"
    pre_resize: bool = False

    def __post_init__(self):
        for name, value, allowed in (("resize", self.resize, RESIZE_MODES),
                                     ("mask_rule", self.mask_rule, MASK_RULES),
                                     ("memory_dtype", self.memory_dtype, MEMORY_DTYPES)):
            if value not in allowed:
                raise UserInputError(f"input profile {name} {value!r} is unknown; use one of "
                                     f"{', '.join(allowed)}")
        if not isinstance(self.pre_resize, bool):
            raise UserInputError(f"input profile pre_resize {self.pre_resize!r} must be true or "
                                 "false")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def replace(self, **changes) -> "InputProfile":
        """This profile with some settings changed (None values keep the current ones)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def describe(self) -> str:
        return (f"resize {self.resize}, reference masks {self.mask_rule} "
                f"({'> 0' if self.mask_rule == 'any' else '>= 0.5'}), memory {self.memory_dtype}"
                f"{', datasets pre-resized to their canvas' if self.pre_resize else ''}")


#: SAM2's own video predictor: what sansa does for frozen SAM2 and files without a profile
VIDEO_PREDICTOR = InputProfile()
#: the SANSA authors' release (its benchmark loaders pre-resize to the dataset's canvas)
RELEASE = InputProfile("antialias-bilinear", "any", "fp32", True)
#: adapters trained by sansa: fed during training exactly like this
SANSA_TRAINING = InputProfile("pil-bicubic", "half", "fp32", False)


def profile_from_json(text: str, source: str) -> InputProfile:
    """Parse a stored profile; unknown keys or values are an error naming ``source``."""
    try:
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise UserInputError(f"{source} has a damaged input profile ({exc})") from exc
    known = {f.name for f in dataclasses.fields(InputProfile)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserInputError(f"{source} sets input profile {', '.join(unknown)}, unknown to this "
                             f"sansa (known: {', '.join(sorted(known))}); upgrade sansa")
    try:
        return InputProfile(**values)
    except UserInputError as exc:
        raise UserInputError(f"{source}: {exc}") from exc


def infer_profile(extra: dict[str, str]) -> tuple[InputProfile, str]:
    """The profile of an adapter file written before profiles existed, from its other metadata,
    and how it was inferred: files converted from the release get the release's rules, others
    the rules they were used with so far (SAM2's video predictor), so their masks do not change.
    """
    official = extra.get("source", "").startswith("official")
    if official or extra.get("image_resize") == RELEASE.resize:
        return RELEASE, "inferred: converted from the authors' release"
    return VIDEO_PREDICTOR, "inferred: written before input profiles, used as before"


PRESETS = {"video-predictor": VIDEO_PREDICTOR, "release": RELEASE,
           "sansa-training": SANSA_TRAINING}


def apply_profile_options(profile: InputProfile, items: list[str] | None) -> InputProfile:
    """``--input-profile`` values on top of ``profile``: a preset name (``video-predictor``,
    ``release``, ``sansa-training``) replaces it, ``KEY=VALUE`` changes one setting."""
    from sansa_cli.core.parsing import key_values

    for item in items or []:
        if "=" not in item:
            if item not in PRESETS:
                raise UserInputError(f"--input-profile {item!r} is neither a preset "
                                     f"({', '.join(PRESETS)}) nor KEY=VALUE; e.g. "
                                     "--input-profile mask_rule=any")
            profile = PRESETS[item]
            continue
        changes = key_values([item], "--input-profile", "mask_rule=any")
        known = {f.name for f in dataclasses.fields(InputProfile)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise UserInputError(f"--input-profile has no setting {unknown[0]!r}; its settings "
                                 f"are {', '.join(sorted(known))}")
        profile = profile.replace(**changes)
    return profile
