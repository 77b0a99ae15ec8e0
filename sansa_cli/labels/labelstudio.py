"""``OUT/labelstudio.json`` (tasks with pre-annotations) and ``OUT/labelstudio_config.xml``
(the labeling interface they fit), for Label Studio's import.

Each target becomes one task::

    {"data": {"image": URL},
     "predictions": [{"model_version": "sansa-<version>", "score": <mean instance score>,
                      "result": [<one region per instance>]}]}

A task with nothing found has an empty ``result`` and no ``score``. Each region has a unique
``id``, ``from_name`` ``"label"``, ``to_name`` ``"image"``, ``original_width``,
``original_height``, ``image_rotation`` 0 and its instance's ``score``; its ``value`` is

- ``brushlabels`` (default): ``{"format": "rle", "rle": [...], "brushlabels": [name]}``, the
  exact mask in Label Studio's own brush RLE (:mod:`sansa_cli.labels.brush`, not COCO RLE);
- ``polygonlabels`` (``polygons=True``): ``{"points": [[x%, y%], ...], "polygonlabels":
  [name], "closed": true}``, pixel-corner outlines in percent of the image size, one region
  per part. A Label Studio polygon has no holes, so holes are filled.

Image URLs: ``/data/local-files/?d=<path relative to document_root>`` (Label Studio started
with ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true`` and
``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` = ``document_root``, and a "Local files" source
storage on the targets' folder). Label Studio wants that storage folder strictly inside the
document root, so the default ``document_root`` is the parent of the folder holding all
targets, and URLs read ``?d=<folder>/<file>``. With ``image_url_prefix`` (an upload or cloud
location) the URL is the prefix followed by the path relative to the folder holding all
targets (usually the file name). Paths are URL-quoted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from sansa_cli import __version__
from sansa_cli.artifacts.files import finite_json, write_bytes_atomic
from sansa_cli.labels.brush import brush_rle
from sansa_cli.labels.model import ClassInfo, Instance, LabelledImage
from sansa_cli.labels.palette import voc_colormap
from sansa_cli.labels.writer import LabelWriter, common_folder, relative_name

TASKS_NAME = "labelstudio.json"
CONFIG_NAME = "labelstudio_config.xml"
LOCAL_FILES = "/data/local-files/?d="


def label_config(classes: Sequence[ClassInfo], polygons: bool = False) -> str:
    """The labeling interface the tasks fit: an image named ``image`` and a ``BrushLabels``
    (or ``PolygonLabels``) control named ``label`` with one label per class, coloured as in
    the palette PNGs."""
    tag = "PolygonLabels" if polygons else "BrushLabels"
    colours = voc_colormap(len(classes) + 1)[1:]
    labels = "".join(f'    <Label value={quoteattr(c.name)} background="#{r:02x}{g:02x}{b:02x}"/>\n'
                     for c, (r, g, b) in zip(classes, colours.tolist()))
    return (f'<View>\n  <Image name="image" value="$image" zoom="true"/>\n'
            f'  <{tag} name="label" toName="image">\n{labels}  </{tag}>\n</View>\n')


class LabelStudioWriter(LabelWriter):
    """Builds one task per added image; writes the tasks and the labeling config on close."""

    def __init__(self, out: str | Path, classes: Sequence[ClassInfo], *, polygons: bool = False,
                 document_root: str | Path | None = None, image_url_prefix: str | None = None,
                 model_version: str | None = None) -> None:
        super().__init__(out, classes)
        self.polygons = polygons
        self.document_root = None if document_root is None else Path(document_root)
        self.image_url_prefix = image_url_prefix
        self.model_version = model_version or f"sansa-{__version__}"

    def _add(self, image: LabelledImage) -> dict:
        self._claim(str(image.path.absolute()), image, "the Label Studio task")
        instances = image.present()
        result = [region for instance in instances for region in self._regions_of(image, instance)]
        prediction = {"model_version": self.model_version, "result": result}
        if instances:
            prediction["score"] = sum(i.score for i in instances) / len(instances)
        return {"path": str(image.path), "predictions": [prediction]}

    def _regions_of(self, image: LabelledImage, instance: Instance) -> list[dict]:
        name = [self.classes[instance.class_index].name]
        if self.polygons:
            from sansa_cli.labels.contours import corner_rings

            scale = [100.0 / image.width, 100.0 / image.height]
            values = [{"points": (ring * scale).tolist(), "polygonlabels": name, "closed": True}
                      for ring in corner_rings(instance.mask)[0]]
            kind = "polygonlabels"
        else:
            values = [{"format": "rle", "rle": brush_rle(instance.mask), "brushlabels": name}]
            kind = "brushlabels"
        return [self._region(image, kind, value, instance.score) for value in values]

    def _region(self, image: LabelledImage, kind: str, value: dict, score: float) -> dict:
        return {"id": "", "type": kind, "from_name": "label",
                "to_name": "image", "original_width": image.width,
                "original_height": image.height, "image_rotation": 0, "value": value,
                "score": score}

    def _url(self, path: Path, folder: Path) -> str:
        if self.image_url_prefix is not None:
            return self.image_url_prefix + quote(relative_name(path, folder, "the targets' folder"))
        root = self.document_root or folder.parent
        return LOCAL_FILES + quote(relative_name(path, root, "the document root"))

    def close(self) -> list[Path]:
        folder = common_folder(Path(r["path"]) for r in self._records)
        tasks = [{"data": {"image": self._url(Path(r["path"]), folder)},
                  "predictions": r["predictions"]} for r in self._records]
        regions = (region for task in tasks for p in task["predictions"] for region in p["result"])
        for number, region in enumerate(regions, start=1):  # unique ids, in file order
            region["id"] = f"sansa-{number}"
        tasks_path, config_path = self.out / TASKS_NAME, self.out / CONFIG_NAME
        write_bytes_atomic(tasks_path, (finite_json(tasks, indent=None) + "\n").encode())
        write_bytes_atomic(config_path, label_config(self.classes, self.polygons).encode())
        return [tasks_path, config_path]
