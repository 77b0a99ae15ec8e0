"""References of several classes, read from one file: ``sansa predict --references FILE``.

FILE is a class list (YAML) or a COCO instances file (JSON). Every class of FILE is segmented
in every target. The whole file is checked (keys, files, image sizes from the files' headers)
before any image is decoded, so a bad entry fails in one line before any work.

**Class list** (``.yaml`` / ``.yml``)::

    classes:
      - name: cat
        references:
          - {image: refs/a.jpg, mask: refs/a_cat.png}
          - {image: refs/b.jpg, box: [40, 30, 220, 200]}
      - name: dog
        references:
          - {image: refs/c.jpg, points: [[120, 80]], negative: [[5, 5]]}
          - {image: refs/d.jpg, scribble: refs/d_strokes.png}

The top level holds only ``classes``, a list of classes in the order they are labelled. A class
has a ``name`` (a non-empty string, unique in the file) and a non-empty list of ``references``.
A reference has an ``image`` and exactly one marking: ``mask`` (a mask file of the image's size:
its non-zero pixels are the object), ``box`` (``[x0, y0, x1, y1]``, the top-left and
bottom-right corners in pixels), ``points`` (clicks on the object, ``[[x, y], ...]``, with
optional ``negative`` clicks on the background) or ``scribble`` (an image of the image's size
whose non-zero pixels are strokes drawn on the object). Relative paths start at the folder of
the YAML file. The same list written as JSON (``{"classes": [...]}``) is read alike.
With ``--max-references N``, each class keeps its first N references.

**COCO instances file** (``.json``), as labelling tools export it (CVAT "COCO 1.0", ...), with
``--reference-images DIR``, the folder its images' ``file_name``s are relative to. Every
category with annotations is a class, named by the category and keeping its ``id`` (the COCO
output reuses it); classes come in the order of ``categories``. The images annotated with a
category are its references: all its instances in one image (polygons, RLE or uncompressed RLE)
are merged into one mask. ``iscrowd`` annotations are merged too: their pixels belong to the
class, and some tools mark any mask with holes as a crowd. With ``--max-references N``, a class
keeps the N images where its mask covers the most pixels (ties: the lower image id); only those
images are opened. Categories without annotations, or whose annotations hold no mask (boxes
only), are skipped with a warning. Every image that holds an annotation is labelled already, so
predict leaves it out of the targets, whether or not it was kept as a reference.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sansa_cli.core.prompts import Box, Points, Scribble
from sansa_cli.errors import MissingFileError, SansaError, UserInputError

if TYPE_CHECKING:
    from sansa_cli.core.references import Reference

MARKINGS = ("mask", "box", "points", "scribble")
REFERENCE_KEYS = {"image", "negative", *MARKINGS}
CLASS_KEYS = {"name", "references"}
COCO_KEYS = ("images", "annotations", "categories")
YAML_SUFFIXES = {".yaml", ".yml"}
ORIENTATION = 0x0112  # the EXIF tag; values 5..8 turn the image by 90 degrees


@dataclass
class ClassReferences:
    """One class, loaded: its ``references`` (:class:`~sansa_cli.core.references.Reference`),
    one line per reference saying where it came from, and its COCO category id (None for a
    class list)."""

    name: str
    references: list[Reference]
    sources: list[str]
    category_id: int | None = None


@dataclass(frozen=True)
class ClassReferenceSet:
    """What FILE holds: its classes in file order, the images it labels already (COCO only:
    absolute, resolved paths, to drop from the targets) and notes for the user."""

    classes: list[ClassReferences]
    labelled_images: frozenset[Path]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class CocoMask:
    """The segmentations of one class in one image, merged into a mask when loaded."""

    segmentations: tuple
    height: int
    width: int


@dataclass(frozen=True)
class PlannedReference:
    """A checked reference, not decoded: ``marking`` is a mask path, a prompt or a CocoMask."""

    image: Path
    marking: Any
    where: str  # e.g. "class 'dog', reference 2", for messages
    source: str  # e.g. "/data/refs/c.jpg (points:120,80|neg:5,5)"


@dataclass(frozen=True)
class PlannedClass:
    name: str
    references: tuple[PlannedReference, ...]
    category_id: int | None = None


@dataclass(frozen=True)
class ClassReferencePlan:
    """FILE, checked; nothing decoded yet. :meth:`load` decodes the references."""

    file: Path
    classes: tuple[PlannedClass, ...]
    labelled_images: frozenset[Path] = frozenset()
    warnings: tuple[str, ...] = ()

    def load(self) -> ClassReferenceSet:
        """Decode every reference (an empty mask or scribble fails here, in one line)."""
        classes = [ClassReferences(c.name, [self._load(r) for r in c.references],
                                   [r.source for r in c.references], c.category_id)
                   for c in self.classes]
        return ClassReferenceSet(classes, self.labelled_images, self.warnings)

    def _load(self, planned: PlannedReference):
        from sansa_cli.core.references import load_reference
        from sansa_cli.datasets.segmentation import merged_mask

        marking = planned.marking
        with _about(f"{self.file}: {planned.where}"):
            if isinstance(marking, CocoMask):
                marking = merged_mask(marking.segmentations, marking.height,
                                      marking.width).astype(bool)
            return load_reference(planned.image, marking)


def plan_class_references(path: str | Path, *, reference_images: str | Path | None = None,
                          max_references: int | None = None) -> ClassReferencePlan:
    """Check a class list or COCO instances file (see the module docstring) without decoding
    an image. ``reference_images`` is the folder of a COCO file's images; ``max_references``
    caps the references of each class. Raises a one-line
    :class:`~sansa_cli.errors.UserInputError` (``MissingFileError`` for a missing file) that
    names the file, the class and the entry."""
    if max_references is not None and (not _whole(max_references) or max_references < 1):
        raise UserInputError(f"--max-references {max_references!r} is not a whole number >= 1")
    path = Path(path).expanduser()
    data = _parse(path)
    with _about(str(path)):
        if _is_coco(data, path):
            return _coco_plan(data, path, reference_images, max_references)
        return _plan_class_list(data, path, max_references)


def read_class_references(path: str | Path, *, reference_images: str | Path | None = None,
                          max_references: int | None = None) -> ClassReferenceSet:
    """:func:`plan_class_references`, then :meth:`ClassReferencePlan.load`."""
    return plan_class_references(path, reference_images=reference_images,
                                 max_references=max_references).load()


# -- reading the file --------------------------------------------------------------------------
def _parse(path: Path):
    if not path.exists():
        raise MissingFileError(f"references file {path} does not exist; check the path")
    if not path.is_file():
        raise UserInputError(f"references file {path} is not a regular file; give a class list "
                             "(.yaml) or a COCO instances file (.json)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"references file {path} cannot be read as text ({exc})") from None
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        return _yaml(text, path)
    try:
        return json.loads(text)
    except ValueError as exc:
        if suffix != ".json":
            return _yaml(text, path)
        raise UserInputError(f"{path} is not JSON (line {exc.lineno}, column {exc.colno}: "
                             f"{exc.msg}); give a COCO instances file") from None


def _yaml(text: str, path: Path):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "a syntax error"
        raise UserInputError(f"{path} is not valid YAML ({problem}{at}); see the class list "
                             "format in the README") from None


def _is_coco(data, path: Path) -> bool:
    if isinstance(data, dict) and "classes" in data:
        return False
    return path.suffix.lower() == ".json" or (isinstance(data, dict)
                                              and any(k in data for k in COCO_KEYS))


@contextlib.contextmanager
def _about(where: str):
    """Prefix the message of a sansa error raised in the block with ``where``."""
    try:
        yield
    except SansaError as exc:
        raise type(exc)(f"{where}: {exc}") from None


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _upright_size(path: Path, what: str) -> tuple[int, int]:
    """(width, height) as the user sees the image (EXIF orientation applied), from its header.

    A PNG's EXIF may follow its pixels; it is read only if in the header (loading re-checks)."""
    from sansa_cli.core.images import open_image_file

    with open_image_file(path, what) as image:
        width, height = image.size
        exif = image.getexif() if image.format != "PNG" or "exif" in image.info else {}
        turned = exif.get(ORIENTATION, 1) in (5, 6, 7, 8)
    return (height, width) if turned else (width, height)


# -- class list --------------------------------------------------------------------------------
def _plan_class_list(data, path: Path, max_references: int | None) -> ClassReferencePlan:
    if not isinstance(data, dict) or "classes" not in data:
        raise UserInputError("the top level is not `classes: [...]`; see the class list format "
                             "in the README")
    extra = sorted(map(str, set(data) - {"classes"}))
    if extra:
        raise UserInputError(f"unknown top-level key {extra[0]!r}; the file holds only "
                             "`classes: [...]`")
    entries = data["classes"]
    if not isinstance(entries, list) or not entries:
        raise UserInputError("`classes` is not a non-empty list of classes, each with a name "
                             "and references")
    classes: list[PlannedClass] = []
    for number, entry in enumerate(entries, 1):
        planned = _plan_class(entry, number, path.parent, max_references)
        twin = next((k for k, c in enumerate(classes, 1) if c.name == planned.name), None)
        if twin is not None:
            raise UserInputError(f"class {number} is named {planned.name!r} like class {twin}; "
                                 "class names must be unique")
        classes.append(planned)
    return ClassReferencePlan(path, tuple(classes))


def _plan_class(entry, number: int, base: Path, max_references: int | None) -> PlannedClass:
    if not isinstance(entry, dict):
        raise UserInputError(f"class {number} is not a mapping with a name and references")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise UserInputError(f"class {number}: name {name!r} is not a non-empty string; give "
                             "e.g. `name: cat`")
    label = f"class {name!r}"
    extra = sorted(map(str, set(entry) - CLASS_KEYS))
    if extra:
        raise UserInputError(f"{label}: unknown key {extra[0]!r}; a class has a name and "
                             "references")
    references = entry.get("references")
    if not isinstance(references, list) or not references:
        raise UserInputError(f"{label} has no references; list at least one under "
                             "`references:`")
    planned = tuple(_plan_reference(r, f"{label}, reference {k}", base)
                    for k, r in enumerate(references, 1))
    return PlannedClass(name, planned[:max_references])


def _plan_reference(entry, where: str, base: Path) -> PlannedReference:
    if not isinstance(entry, dict):
        raise UserInputError(f"{where} is not a mapping like {{image: a.jpg, mask: a.png}}")
    extra = sorted(map(str, set(entry) - REFERENCE_KEYS))
    if extra:
        raise UserInputError(f"{where}: unknown key {extra[0]!r}; a reference has an image and "
                             "one of mask, box, points (with negative), scribble")
    if "image" not in entry:
        raise UserInputError(f"{where} has no image; add `image: FILE`")
    given = [k for k in MARKINGS if k in entry]
    if len(given) != 1:
        found = "no marking" if not given else "markings " + " and ".join(given)
        raise UserInputError(f"{where} has {found}; give exactly one of mask, box, points, "
                             "scribble")
    if "negative" in entry and given != ["points"]:
        raise UserInputError(f"{where}: negative clicks go with points, not with {given[0]}")
    image = _file(entry["image"], "image", where, base)
    marking = _marking(given[0], entry, where, base)
    with _about(where):
        _check_sizes(image, marking)
    return PlannedReference(image, marking, where, f"{image} ({_describe(marking)})")


def _file(value, what: str, where: str, base: Path) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise UserInputError(f"{where}: {what} {value!r} is not a file path")
    path = base / Path(value).expanduser()
    if not path.exists():
        raise MissingFileError(f"{where}: {what} {path} does not exist; check the path "
                               f"(relative paths start at the class list's folder {base})")
    return path


def _marking(kind: str, entry: dict, where: str, base: Path):
    value = entry[kind]
    if kind == "mask":
        return _file(value, "mask", where, base)
    if kind == "scribble":
        return Scribble(_file(value, "scribble", where, base))
    if kind == "box":
        if not isinstance(value, list) or len(value) != 4 or not all(map(_number, value)):
            raise UserInputError(f"{where}: box {value!r} is not 4 numbers [x0, y0, x1, y1]")
        return Box(*map(float, value))
    negative = entry.get("negative", [])
    return Points(_points(value, "points", where), _points(negative, "negative", where))


def _points(value, what: str, where: str) -> tuple[tuple[float, float], ...]:
    def is_point(item) -> bool:
        return isinstance(item, list) and len(item) == 2 and all(map(_number, item))

    if not isinstance(value, list) or not all(map(is_point, value)) or (
            what == "points" and not value):
        raise UserInputError(f"{where}: {what} {value!r} is not a list of [x, y] points, e.g. "
                             "[[120, 80]]")
    return tuple((float(x), float(y)) for x, y in value)


def _check_sizes(image: Path, marking) -> None:
    """The marking fits the image: a mask or scribble of its size, clicks and box inside it."""
    from sansa_cli.core.prompts import coords_and_labels

    width, height = _upright_size(image, "image")
    if isinstance(marking, (Path, Scribble)):
        what, file = ("mask", marking) if isinstance(marking, Path) else ("scribble",
                                                                          marking.strokes)
        w, h = _upright_size(file, what)
        if (w, h) != (width, height):
            raise UserInputError(f"{what} {file} is {w}x{h} but image {image} is "
                                 f"{width}x{height}; give the {what} of that image at its size")
    else:
        coords_and_labels(marking, width, height)


def _describe(marking) -> str:
    """A marking as ``sansa predict --reference`` writes it."""
    if isinstance(marking, Path):
        return str(marking)
    if isinstance(marking, Scribble):
        return f"scribble:{marking.strokes}"
    if isinstance(marking, Box):
        return f"box:{marking.x0:g},{marking.y0:g},{marking.x1:g},{marking.y1:g}"
    text = "points:" + ";".join(f"{x:g},{y:g}" for x, y in marking.positive)
    return text + ("|neg:" + ";".join(f"{x:g},{y:g}" for x, y in marking.negative)
                   if marking.negative else "")


# -- COCO instances file -----------------------------------------------------------------------


def _coco_plan(data, path: Path, reference_images, max_references) -> ClassReferencePlan:
    from sansa_cli.core.coco_references import plan_coco

    return plan_coco(data, path, reference_images, max_references)
