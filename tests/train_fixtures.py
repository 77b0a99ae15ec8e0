"""A tiny training setup: the folder dataset written in its real layout, the tiny SAM2."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.conftest import TINY_YAML, build_tiny
from tests.datasets_fixtures import make_folder


def training_setup(root: Path) -> dict:
    data = root / "data"
    make_folder(data)
    ckpt = root / "tiny.pt"
    torch.save({"model": build_tiny().state_dict()}, ckpt)
    return {"data": data, "ckpt": ckpt}


def config(setup: dict, **changes):
    from sansa_cli.train.config import load_config

    values = dict(dataset="folder", data_root=str(setup["data"]), sam2=str(TINY_YAML),
                  sam2_checkpoint=str(setup["ckpt"]), batch_size=2, epochs=2, workers=0,
                  device="cpu", seq_len=2, lr=1e-3)
    values.update(changes)
    return load_config(None, values)


def adapter_tensors(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / "adapter.safetensors"))
