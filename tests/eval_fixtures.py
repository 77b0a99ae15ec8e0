"""Helpers for the evaluation tests: tiny datasets in every real format, adapter files, args."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY_YAML, build_tiny
from tests.datasets_fixtures import BUILDERS


@pytest.fixture(scope="session")
def eval_roots(tmp_path_factory) -> dict:
    """name -> (root, options) of each tiny dataset, written once per session."""
    return {name: build(tmp_path_factory.mktemp(f"eval_{name}"))
            for name, build in BUILDERS.items()}


def model_args(checkpoint: Path) -> list:
    """Model options; ``--adapters none`` comes first so a test's own ``--adapters`` wins."""
    return ["--adapters", "none", "--sam2", TINY_YAML, "--sam2-checkpoint", checkpoint,
            "--device", "cpu", "--precision", "fp32"]


def adapter_file(path: Path, seed: int = 5) -> Path:
    """An AdaptFormer file for the tiny model with non-zero weights (a fresh one is a no-op)."""
    from sansa_cli.artifacts.adapter_file import AdapterInfo, save_adapter_file
    from sansa_cli.adapters.adaptformer import AdaptFormer
    from sansa_cli.adapters.base import apply_strategy

    strategy = AdaptFormer()
    trainable = apply_strategy(build_tiny(), strategy)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in trainable.values():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5)
    info = AdapterInfo("adaptformer", json.loads(strategy.config_json()), str(TINY_YAML))
    return save_adapter_file(path, trainable, info)


def read_results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def episode_rows(out: Path) -> list[dict]:
    lines = (out / "episodes.jsonl").read_text().splitlines()[1:]
    return [json.loads(line) for line in lines]
