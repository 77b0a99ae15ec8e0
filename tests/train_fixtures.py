"""A tiny training setup: the folder dataset written in its real layout, the tiny SAM2.

Test modules import the ``setup`` fixture from here (``# noqa: F401``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TINY_YAML
from tests.datasets_fixtures import make_folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_checkpoint) -> dict:
    """The folder dataset (3 classes of 3 images) and the tiny SAM2's checkpoint."""
    data = tmp_path_factory.mktemp("train") / "data"
    make_folder(data)
    return {"data": data, "ckpt": tiny_checkpoint}


def config(setup: dict, **changes):
    from sansa_cli.train.config import load_config

    values = dict(dataset="folder", data_root=str(setup["data"]), sam2=str(TINY_YAML),
                  sam2_checkpoint=str(setup["ckpt"]), batch_size=2, epochs=2, workers=0,
                  device="cpu", seq_len=2, lr=1e-3, precision="fp32")
    values.update(changes)
    return load_config(None, values)


def adapter_tensors(run: Path, name: str = "adapter.safetensors") -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / name))


def log_rows(run: Path) -> list[dict]:
    """The rows of a run's ``log.jsonl``."""
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def latest_checkpoint(run: Path) -> dict:
    import torch

    return torch.load(run / "checkpoints" / "latest.pt", weights_only=True)


# -- mixtures of datasets -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mix_data(tmp_path_factory, setup) -> dict:
    """Folders of two real datasets for mixture runs: the folder dataset and a tiny COCO-20i."""
    from tests.datasets_fixtures import make_coco20i

    coco = tmp_path_factory.mktemp("mix") / "coco"
    make_coco20i(coco)
    return {"folder": setup["data"], "coco20i": coco}


def mix_config(setup: dict, mix_data: dict, **changes):
    """A mixture run of the folder dataset and COCO-20i (equal weights, every class)."""
    values = dict(dataset="mix", mix={"folder": 1, "coco20i": 1},
                  data_root={k: str(v) for k, v in mix_data.items()}, fold="all")
    values.update(changes)
    return config(setup, **values)


@pytest.fixture()
def no_model_work(monkeypatch):
    """Building a model or downloading a checkpoint fails the test: checks must come first."""
    import sansa_cli.artifacts.download as download
    import sansa_cli.train.setup as setup_module

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the input was checked")

    monkeypatch.setattr(setup_module, "build_model", forbidden)
    monkeypatch.setattr(download, "download", forbidden)


def with_plugins(monkeypatch, **plugins) -> None:
    """Make the registry load these extra dataset plugin classes by name (test plugins)."""
    from sansa_cli import registry

    real = registry.load

    def load(kind: str, name: str):
        if kind == "dataset" and name in plugins:
            return plugins[name]
        return real(kind, name)

    monkeypatch.setattr(registry, "load", load)
