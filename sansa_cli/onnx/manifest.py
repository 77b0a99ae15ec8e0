"""``sansa-onnx.json``: what an exported folder holds and how its graphs are fed.

Written last by ``sansa export-onnx`` (a folder without it is an unfinished export) and read by
the torch-free runtime, so this module needs only the standard library. Keys:

- ``format`` (``sansa-onnx``), ``format_version``, ``sansa_version``;
- ``base_model``, ``sam2_checkpoint`` and its ``sam2_checkpoint_sha256`` (null: random weights);
- ``adapters``: ``file``, ``sha256``, ``strategy``, ``merged`` (folded into SAM2's weights);
- ``input_profile`` (resize, mask_rule, memory_dtype, pre_resize) and ``memory_precision`` (how
  the profile's memory dtype is honoured: the graphs are fp32, bf16 memory is rounded by the
  runtime exactly as torch rounds it);
- ``image_size``, ``opset``, ``dtype``, ``levels`` (feature-level names), ``object_score``
  (whether the decoder has an object-presence head);
- ``graphs``: name -> ``file`` and its ``inputs``/``outputs`` (name, dtype, shape; a string is a
  dynamic dimension);
- ``versions`` of torch, sam2, onnx, onnxscript, onnxruntime and Python used to export.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sansa_cli.errors import MissingFileError, UserInputError

MANIFEST_NAME = "sansa-onnx.json"
FORMAT = "sansa-onnx"
FORMAT_VERSION = "1"
#: the graphs every export holds, in the order they run
GRAPHS = ("encoder", "mask_reference", "prompt_reference", "condition", "decoder")
#: what the runtime does with the profile's memory dtype (recorded in every manifest)
MEMORY_PRECISION = {
    "bf16": "graphs fp32; reference memory features rounded to bf16 (nearest even) by the "
            "runtime between the reference graph and memory attention, as sansa's torch path "
            "keeps them",
    "fp32": "graphs and reference memory fp32, as sansa's torch path",
}


@dataclass
class Manifest:
    """A read, checked ``sansa-onnx.json`` (``values``) and the folder holding it."""

    folder: Path
    values: dict[str, Any]

    @property
    def image_size(self) -> int:
        return int(self.values["image_size"])

    @property
    def profile(self) -> dict[str, Any]:
        return dict(self.values["input_profile"])

    @property
    def levels(self) -> list[str]:
        return list(self.values["levels"])

    @property
    def object_score(self) -> bool:
        return bool(self.values["object_score"])

    def graph_path(self, name: str) -> Path:
        return self.folder / self.values["graphs"][name]["file"]

    def input_names(self, name: str) -> list[str]:
        return [item["name"] for item in self.values["graphs"][name]["inputs"]]


def read_manifest(folder: str | Path) -> Manifest:
    """The manifest of an exported folder, checked: format, version, every graph file present;
    anything wrong is one line naming the folder and the fix."""
    folder = Path(folder).expanduser()
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise MissingFileError(f"ONNX folder {folder} does not exist; export one with "
                               "`sansa export-onnx --out DIR`")
    if not path.is_file():
        raise MissingFileError(f"{folder} holds no {MANIFEST_NAME} (not an ONNX export, or an "
                               "unfinished one); export it again with `sansa export-onnx`")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{path} is not readable JSON ({exc}); export again") from exc
    if not isinstance(values, dict) or values.get("format") != FORMAT:
        raise UserInputError(f"{path} is not a sansa ONNX manifest; export with "
                             "`sansa export-onnx`")
    if values.get("format_version") != FORMAT_VERSION:
        raise UserInputError(f"{path} has format version {values.get('format_version')!r}; "
                             f"this sansa reads version {FORMAT_VERSION}: export again or "
                             "upgrade sansa")
    missing = [k for k in ("image_size", "input_profile", "levels", "object_score", "graphs")
               if k not in values]
    graphs = values.get("graphs") if isinstance(values.get("graphs"), dict) else {}
    missing += [f"graphs.{name}" for name in GRAPHS if name not in graphs]
    if missing:
        raise UserInputError(f"{path} lacks {', '.join(missing)}; export again")
    manifest = Manifest(folder, values)
    for name in GRAPHS:
        if not manifest.graph_path(name).is_file():
            raise MissingFileError(f"{folder} lacks {graphs[name]['file']} that its manifest "
                                   "lists; export again")
    return manifest
