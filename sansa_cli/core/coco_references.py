"""The COCO half of :mod:`sansa_cli.core.class_references`: an instances file (as labelling tools
export it) read as classes of references, checked without decoding a pixel.

Every category with annotations is a class (its ``id`` kept); the images annotated with it are
its references, its instances in one image merged into one mask; ``max_references`` keeps the N
images where the class covers the most pixels (ties: the lower image id). The format and the
rules are documented in :mod:`sansa_cli.core.class_references`.
"""

from __future__ import annotations

from pathlib import Path

from sansa_cli.core.class_references import (
    COCO_KEYS,
    ClassReferencePlan,
    CocoMask,
    PlannedClass,
    PlannedReference,
    _about,
    _number,
    _upright_size,
    _whole,
)
from sansa_cli.errors import MissingFileError, UserInputError


def plan_coco(data, path: Path, reference_images, max_references) -> ClassReferencePlan:
    if reference_images is None:
        raise UserInputError("this is a COCO instances file; add --reference-images DIR, the "
                             "folder its images' file_names are relative to")
    folder = Path(reference_images).expanduser()
    if not folder.is_dir():
        raise MissingFileError(f"--reference-images {folder} is not a folder; give the folder "
                               "the COCO file's file_names are relative to")
    images, categories, annotations = _coco_tables(data)
    groups, annotated = _group(annotations, images, categories)
    labelled = frozenset(_image_path(folder, images[i]).resolve()
                         for i in annotated["images"])
    classes, warnings, sizes = [], [], {}
    for category_id, category in categories.items():
        name, by_image = category["name"], groups.get(category_id)
        if not by_image:
            held = ("only annotations without a mask (boxes?)"
                    if category_id in annotated["categories"] else "no annotations")
            warnings.append(f"category {name!r} (id {category_id}) has {held}; skipped")
            continue
        twin = next((c.category_id for c in classes if c.name == name), None)
        if twin is not None:
            raise UserInputError(f"categories {twin} and {category_id} are both named {name!r}; "
                                 "rename one in the labelling tool")
        chosen = _choose(by_image, images, max_references)
        refs = tuple(_coco_reference(folder, images[i], by_image[i], category, sizes)
                     for i in chosen)
        classes.append(PlannedClass(name, refs, category_id))
    if not classes:
        raise UserInputError("no category has an annotated mask; label some images first")
    return ClassReferencePlan(path, tuple(classes), labelled, tuple(warnings))


def _positive(value) -> bool:
    return _whole(value) and value > 0


def _text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


IMAGE_FIELDS = {"id": (_whole, "a whole number"), "file_name": (_text, "a file name"),
                "width": (_positive, "a whole number > 0"),
                "height": (_positive, "a whole number > 0")}
CATEGORY_FIELDS = {"id": (_whole, "a whole number"), "name": (_text, "a non-empty name")}
ANNOTATION_FIELDS = {"image_id": (_whole, "a whole number"),
                     "category_id": (_whole, "a whole number")}


def _coco_tables(data) -> tuple[dict, dict, list]:
    """Images and categories by id (in file order), and the annotations, once well formed."""
    if not isinstance(data, dict):
        raise UserInputError("not a COCO instances file (a JSON object with images, "
                             "annotations and categories)")
    missing = next((k for k in COCO_KEYS if not isinstance(data.get(k), list)), None)
    if missing is not None:
        raise UserInputError(f"not a COCO instances file: it has no {missing!r} list; export "
                             "the instances (COCO 1.0) from the labelling tool")
    images = _table(data["images"], "image", IMAGE_FIELDS)
    categories = _table(data["categories"], "category", CATEGORY_FIELDS)
    for number, annotation in enumerate(data["annotations"], 1):
        _check_fields(annotation, f"annotation {number}", ANNOTATION_FIELDS)
    return images, categories, data["annotations"]


def _table(entries: list, what: str, fields: dict) -> dict:
    table: dict = {}
    for number, entry in enumerate(entries, 1):
        _check_fields(entry, f"{what} {number}", fields)
        if entry["id"] in table:
            raise UserInputError(f"{what} id {entry['id']} is used twice; ids must be unique")
        table[entry["id"]] = entry
    return table


def _check_fields(entry, where: str, fields: dict) -> None:
    if not isinstance(entry, dict):
        raise UserInputError(f"{where} of the file is not a JSON object")
    for key, (valid, kind) in fields.items():
        if key not in entry:
            raise UserInputError(f"{where} of the file has no {key!r}")
        if not valid(entry[key]):
            raise UserInputError(f"{where} of the file: {key} {entry[key]!r} is not {kind}")


def _group(annotations: list, images: dict, categories: dict) -> tuple[dict, dict]:
    """{category id: {image id: [(annotation id, segmentation), ...]}} for annotations with a
    mask (image ids in file order), and the ids of every annotated image and category."""
    groups: dict = {}
    annotated: dict[str, set] = {"images": set(), "categories": set()}
    for number, annotation in enumerate(annotations, 1):
        label = f"annotation {annotation.get('id', f'number {number}')}"
        image_id, category_id = annotation["image_id"], annotation["category_id"]
        for key, value, table in (("image", image_id, images),
                                  ("category", category_id, categories)):
            if value not in table:
                raise UserInputError(f"{label} names {key} id {value}, which the file does not "
                                     "list; re-export the file")
        annotated["images"].add(image_id)
        annotated["categories"].add(category_id)
        image = images[image_id]
        with _about(f"{label} (image {image['file_name']!r})"):
            if _has_mask(annotation.get("segmentation"), image["height"], image["width"]):
                per_image = groups.setdefault(category_id, {})
                per_image.setdefault(image_id, []).append(
                    (annotation.get("id"), annotation["segmentation"]))
    return groups, annotated


def _has_mask(segmentation, height: int, width: int) -> bool:
    """Whether a well-formed ``segmentation`` holds a mask (a box-only annotation does not)."""
    if segmentation is None:
        return False
    if isinstance(segmentation, list):
        if not all(isinstance(p, list) and all(map(_number, p)) for p in segmentation):
            raise UserInputError("segmentation is not a list of polygons [[x0, y0, x1, y1, ...]]")
        return any(len(p) >= 6 for p in segmentation)
    if not isinstance(segmentation, dict) or {"size", "counts"} - set(segmentation):
        raise UserInputError("segmentation is neither polygons nor an RLE {size, counts}")
    size, counts = segmentation["size"], segmentation["counts"]
    if size != [height, width]:
        raise UserInputError(f"its RLE has size {size} but the image is {height}x{width} "
                             "(height x width) in the file; the mask does not fit the image")
    if isinstance(counts, list):
        if not all(_whole(c) and c >= 0 for c in counts) or sum(counts) != height * width:
            raise UserInputError(f"its uncompressed RLE counts do not add up to {height}x{width}")
    elif not isinstance(counts, str):
        raise UserInputError("its RLE counts are neither a string nor a list of run lengths")
    return True


def _choose(by_image: dict, images: dict, max_references: int | None) -> list[int]:
    """Image ids of a class's references, in id order: all, or the ``max_references`` where
    the class's merged mask covers the most pixels (ties: the lower id)."""
    if max_references is None or len(by_image) <= max_references:
        return sorted(by_image)
    area = {i: _mask_area(by_image[i], images[i]) for i in by_image}
    return sorted(sorted(by_image, key=lambda i: (-area[i], i))[:max_references])


def _mask_area(segmentations: list, image: dict) -> int:
    from pycocotools import mask as mask_utils

    from sansa_cli.datasets.segmentation import segmentation_rle

    rles = [segmentation_rle(s, image["height"], image["width"]) for _, s in segmentations]
    return int(mask_utils.area(mask_utils.merge(rles)))


def _image_path(folder: Path, image: dict) -> Path:
    path = folder / image["file_name"]
    if not path.is_file():
        raise MissingFileError(f"image {image['file_name']!r} (id {image['id']}) is not in "
                               f"--reference-images {folder}; point it at the folder the "
                               "file_names are relative to")
    return path


def _coco_reference(folder: Path, image: dict, segmentations: list, category: dict,
                    sizes: dict) -> PlannedReference:
    """One reference; the image's size (from its header, once per image) must be the file's."""
    path = _image_path(folder, image)
    where = (f"category {category['name']!r} (id {category['id']}), image "
             f"{image['file_name']!r} (id {image['id']})")
    with _about(where):
        if path not in sizes:
            sizes[path] = _upright_size(path, "image")
        width, height = sizes[path]
        if (width, height) != (image["width"], image["height"]):
            raise UserInputError(f"image {path} is {width}x{height} but the COCO file says "
                                 f"{image['width']}x{image['height']}; point --reference-images "
                                 "at the images that were labelled")
    ids = ", ".join(str(a) for a, _ in segmentations)
    mask = CocoMask(tuple(s for _, s in segmentations), image["height"], image["width"])
    return PlannedReference(path, mask, where, f"{path} (COCO annotations {ids})")
