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
                  device="cpu", seq_len=2, lr=1e-3)
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
