"""A third-party dataset plugin does everything a built-in does: `sansa prepare` (build, check,
episode lists), `sansa train` and `sansa eval`, through a real entry point and the CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sansa_cli import registry
from sansa_cli.datasets import BuildResult, Episode, FewShotDataset, read_episode_list
from sansa_cli.datasets.base import Track, no_track, usable_pools
from sansa_cli.datasets.reading import open_mask_array, open_rgb
from sansa_cli.errors import MissingFileError, UserInputError
from tests.adapters_fixtures import make_distribution
from tests.cli_helpers import run_sansa
from tests.conftest import TINY_YAML

SHAPES = ("bar", "disc", "ring", "square")


class Shapes(FewShotDataset):
    """A third party's benchmark: ``images/<shape>/<k>.png`` with 0/255 ``masks/<shape>/<k>.png``,
    indexed by ``index.json``, which its build writes from the masks. Fold ``f`` tests the shapes
    ``f, f + 2`` (sorted by name) and trains on the others."""

    name = "shapes"
    num_folds = 2
    splits = ("train", "test")
    eval_split = "test"
    build_options = ("min_area",)  # object pixels a mask needs to be listed in the index

    def __init__(self, root: str | Path, fold: int = 0, split: str | None = None, *,
                 shot: int | None = None):
        super().__init__(root, fold, split)
        path = self.root / "index.json"
        if not path.is_file():
            raise MissingFileError(f"{path} does not exist; run `sansa prepare shapes` first")
        index = json.loads(path.read_text())
        self.names = index["classes"]
        test = [c for c in range(len(self.names)) if c % self.num_folds == fold]
        other = [c for c in range(len(self.names)) if c not in test]
        self.classes = test if self.split == "test" else other
        self._images = {c: index["images"][self.names[c]] for c in self.classes}
        self.shot = shot

    @classmethod
    def options_for_shot(cls, options: dict[str, Any], shot: int) -> dict[str, Any]:
        return {**options, "shot": shot}  # recorded in episode lists and results

    @classmethod
    def build(cls, root: Path, out: Path | None, options: dict[str, Any],
              track: Track = no_track) -> BuildResult | None:
        if not (root / "masks").is_dir():
            return None
        if out is not None and out != root:
            raise UserInputError("shapes writes index.json next to its images; drop --out")
        min_area = options.get("min_area", 1)
        names = sorted(p.name for p in (root / "masks").iterdir() if p.is_dir())
        images = {}
        for name in track(names, len(names), "indexing shapes"):
            masks = sorted((root / "masks" / name).glob("*.png"))
            images[name] = [f"{name}/{m.name}" for m in masks
                            if (open_mask_array(m) >= 128).sum() >= min_area]
        (root / "index.json").write_text(json.dumps({"classes": names, "images": images}))
        listed = sum(map(len, images.values()))
        check = {k: v for k, v in options.items() if k not in cls.build_options}
        return BuildResult(root, check, (f"shapes index: {listed} images listed",))

    def options(self) -> dict[str, Any]:
        return {"shot": self.shot}

    def class_name(self, cid: int) -> str:
        return self.names[cid]

    def images(self, cid: int) -> list[str]:
        return self._images[cid]

    def files(self, image_id: str) -> list[Path]:
        return [self.root / "images" / image_id, self.root / "masks" / image_id]

    def load_image(self, image_id: str):
        return open_rgb(self.root / "images" / image_id)

    def load_mask(self, image_id: str, cid: int) -> np.ndarray:
        return (open_mask_array(self.root / "masks" / image_id) >= 128).astype(np.uint8)

    def sample_episodes(self, rng: random.Random, shot: int, count: int | None) -> list[Episode]:
        """Every (image, class) once in a seeded order; supports: the class's next images."""
        pairs = [(image, cid) for cid, pool in usable_pools(self).items() for image in pool]
        rng.shuffle(pairs)
        episodes = []
        for index in range(count or len(pairs)):
            query, cid = pairs[index % len(pairs)]
            others = [image for image in self.images(cid) if image != query]
            supports = tuple(others[(index + k) % len(others)] for k in range(shot))
            episodes.append(Episode(index, cid, query, supports))
        return episodes


def write_shapes(root: Path) -> Path:
    """3 pictures per shape with a 0/255 mask each; square's last mask is a 2x2 speck."""
    yy, xx = np.mgrid[0:32, 0:40]
    regions = {"bar": (abs(yy - 16) < 4) & (abs(xx - 20) < 15),
               "disc": (yy - 16) ** 2 + (xx - 20) ** 2 < 100,
               "ring": abs(np.hypot(yy - 16, xx - 20) - 9) < 3,
               "square": (abs(yy - 16) < 8) & (abs(xx - 20) < 8)}
    rng = np.random.default_rng(0)
    for name, region in regions.items():
        for k in range(3):
            mask = region if (name, k) != ("square", 2) else (yy < 2) & (xx < 2)
            image = rng.integers(0, 90, (32, 40, 3), dtype=np.uint8)
            image[mask] = (40 * k + 100, 200, 60)
            for folder, picture in (("images", image), ("masks", mask.astype(np.uint8) * 255)):
                (root / folder / name).mkdir(parents=True, exist_ok=True)
                Image.fromarray(picture).save(root / folder / name / f"{k}.png")
    return root


@pytest.fixture()
def shapes_plugin(tmp_path, monkeypatch):
    """``shapes`` registered by a throwaway installed distribution, as a third party would."""
    site = tmp_path / "site"
    make_distribution(site, "shapes-sansa", {})
    entry = f"shapes = {__name__}:{Shapes.__name__}\n"
    (site / "shapes_sansa-0.1.dist-info" / "entry_points.txt").write_text(
        f"[sansa_cli.datasets]\n{entry}")
    monkeypatch.syspath_prepend(str(site))
    assert registry.load("dataset", "shapes") is Shapes
    return write_shapes(tmp_path / "shapes")


def test_third_party_dataset_through_prepare_train_and_eval(shapes_plugin, tiny_checkpoint,
                                                            tmp_path, capsys, monkeypatch):
    root = shapes_plugin
    code, out, err = run_sansa(["prepare", "shapes", "--data-root", root,
                                "--dataset-option", "min_area=20"], capsys, monkeypatch)
    assert code == 0, err
    assert "shapes index: 11 images listed" in out and "0 missing, 0 broken" in out
    assert "square/2.png" not in (root / "index.json").read_text()  # the speck is filtered out

    lists = tmp_path / "lists"
    code, _, err = run_sansa(["prepare", "shapes", "--data-root", root, "--episodes",
                              "--shots", "1,2", "--count", "3", "--out", lists],
                             capsys, monkeypatch)
    assert code == 0, err
    listed = read_episode_list(lists / "shapes_fold0_test_2shot_seed0.json", shot=2)
    assert listed.classes == (0, 2) and listed.options == {"shot": 2}  # options_for_shot
    assert len(list(lists.glob("*.json"))) == 4

    model = ["--sam2", TINY_YAML, "--sam2-checkpoint", tiny_checkpoint, "--device", "cpu"]
    run = tmp_path / "run"
    code, _, err = run_sansa(["train", "--dataset", "shapes", "--data-root", root, "--fold", "0",
                              "--steps", "2", "--batch-size", "1", "--seq-len", "1",
                              "--workers", "0", "--out", run, *model], capsys, monkeypatch)
    assert code == 0, err
    assert (run / "adapter.safetensors").is_file()

    results = tmp_path / "eval"
    code, out, err = run_sansa(["eval", "--dataset", "shapes", "--data-root", root,
                                "--episodes", lists, "--folds", "0", "--shots", "1,2",
                                "--adapters", run / "adapter.safetensors", "--out", results,
                                *model], capsys, monkeypatch)
    assert code == 0, err
    body = json.loads((results / "results.json").read_text())
    assert [(r["fold"], r["shot"], r["episodes"], r["classes"]) for r in body["results"]] == [
        (0, 1, 3, 2), (0, 2, 3, 2)]
    assert body["settings"]["dataset"] == "shapes" and "1-shot mIoU" in out
