"""What the part benchmarks (Pascal-Part, PACO-Part) share: image ids that name one object
instance, the crop to that object's box, their option checks, their layout check, and the frozen
fold-class file ``sansa prepare`` writes for them.

An instance id is ``<image>#<instance>``: the image as the dataset names it (a VOC id, a COCO
file name) and, after the last ``#``, the object instance whose part is the class (its index in
Pascal-Part's per-image object list, its parent annotation id in PACO). The crop, the mask and
the feature cache all depend on the instance, so it belongs in the id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sansa_cli.errors import DatasetError, MissingFileError, UserInputError

SEPARATOR = "#"
#: membership rules of a benchmark whose lineage decides fold membership per shot
MEMBERSHIPS = ("lineage", "fixed")
#: ``fixed``: eligible with more than this many val images (the benchmark's largest shot)
FIXED_SHOT = 5
#: ``lineage`` without a shot: the 1-shot folds
DEFAULT_SHOT = 1
FOLDS_FORMAT = "sansa-part-folds"


def instance_id(image: str, instance: Any) -> str:
    """``image#instance``."""
    return f"{image}{SEPARATOR}{instance}"


def split_instance_id(image_id: str, dataset: str, form: str) -> tuple[str, str]:
    """(image, instance) of an instance id; one-line error naming ``form`` otherwise."""
    image, sep, instance = str(image_id).rpartition(SEPARATOR)
    if not sep or not image or not instance:
        raise UserInputError(f"{dataset} image id {image_id!r} names no object instance; "
                             f"{dataset} ids have the form {form}")
    return image, instance


def crop(array: np.ndarray, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """``array[r0:r1, c0:c1]``: Python slicing, exactly what the lineage applies to image and
    mask (bounds past the edge are clipped)."""
    return array[rows[0]:rows[1], cols[0]:cols[1]]


def cropped_image(image, rows: tuple[int, int], cols: tuple[int, int], image_id: str,
                  dataset: str):
    """The PIL image cropped as :func:`crop` does; an empty crop is a one-line error."""
    from PIL import Image

    array = crop(np.asarray(image), rows, cols)
    if array.size == 0:
        raise DatasetError(f"{dataset} image {image_id}: its object box (rows {rows[0]}:{rows[1]}, "
                           f"cols {cols[0]}:{cols[1]}) crops nothing from the {image.width}x"
                           f"{image.height} image; check its annotation or use "
                           "--dataset-option box_crop=false")
    return Image.fromarray(np.ascontiguousarray(array))


def check_flag(value: Any, name: str, dataset: str) -> bool:
    """A true/false option (JSON ``true``/``false`` on the command line)."""
    if not isinstance(value, bool):
        raise UserInputError(f"{dataset} option {name}={value!r} is not true or false; use "
                             f"--dataset-option {name}=false (or true)")
    return value


def membership_rule(membership: Any, shot: Any, dataset: str) -> tuple[str, int | None]:
    """(``lineage`` or ``fixed``, the shot whose folds are used: None for ``fixed``), each value
    checked; the rules are LVIS-92i's (``sansa_cli.datasets.lvis92i``)."""
    if membership not in MEMBERSHIPS:
        raise UserInputError(f"{dataset} membership {membership!r} is unknown; use lineage (the "
                             "published folds, per shot) or fixed (the same folds for every "
                             "shot)")
    if shot is not None and (isinstance(shot, bool) or not isinstance(shot, int) or shot < 1):
        raise UserInputError(f"{dataset} option shot={shot!r} is not a positive whole number; use "
                             "e.g. --dataset-option shot=1")
    if membership == "fixed":
        if shot is not None:
            raise UserInputError(f"{dataset} membership=fixed uses the same folds for every shot "
                                 f"and takes no shot; drop shot={shot} or use membership=lineage")
        return membership, None
    return membership, DEFAULT_SHOT if shot is None else shot


def fold_text(fold: int | None) -> str:
    """A fold as users write it: its number, or ``all`` for None."""
    return "all" if fold is None else str(fold)


def unknown_class(dataset: Any, cid: Any) -> UserInputError:
    """The error for a class id that is not one of ``dataset.classes``."""
    return UserInputError(f"class {cid} is not in {dataset.name} fold {fold_text(dataset.fold)} "
                          f"split {dataset.split}; its classes are {dataset.classes}")


def check_shot(dataset: str, own: int | None, shot: int) -> None:
    """An instance built for the lineage's ``own``-shot folds serves that shot only."""
    if own is not None and shot != own:
        raise UserInputError(f"this {dataset} has the lineage's {own}-shot folds; build it with "
                             f"shot={shot} (options_for_shot) for {shot}-shot episodes, or with "
                             "membership=fixed")


def find_layout(root: Path, folder: str, required: Sequence[str], dataset: str,
                download: str) -> Path:
    """The dataset's top folder: ``root`` itself, or ``root/folder`` when ``root`` is its parent
    (the lineage's data path); a one-line error names the first path missing."""
    if not root.is_dir():
        raise MissingFileError(f"{dataset} root {root} is not a folder; pass the {folder} folder "
                               "with --data-root")
    base = root / folder if not (root / required[0]).exists() and (root / folder).is_dir() \
        else root
    for relative in required:
        if not (base / relative).exists():
            raise MissingFileError(
                f"{dataset}: {base / relative} does not exist; --data-root must be the {folder} "
                f"folder holding {', '.join(required)}: {download}")
    return base


def write_frozen_folds(path: Path, body: dict[str, Any]) -> str:
    """Write the fold-class record ``body`` to ``path`` (atomically) unless it already holds it;
    an existing different file is kept. Returns the summary line."""
    from sansa_cli.artifacts.files import write_bytes_atomic

    text = (json.dumps({"format": FOLDS_FORMAT, "version": 1, **body}, indent=1) + "\n").encode()
    if path.is_file() and path.read_bytes() == text:
        return f"fold classes in {path}: unchanged"
    if path.exists() or path.is_symlink():
        return (f"{path} exists and differs from the folds of this data: kept (yours); delete it "
                "to rewrite it, or pass another --out")
    write_bytes_atomic(path, text)
    return f"fold classes written to {path}"


def fold_sizes(folds: Sequence[Sequence[Any]]) -> str:
    """``31/4/5/16 = 56``."""
    return f"{'/'.join(str(len(f)) for f in folds)} = {sum(len(f) for f in folds)}"
