"""Helpers for the adapter tests: adapted tiny SAM2s, synthetic checkpoints in our training
layout and in the SANSA release's layout, a throwaway third-party plugin distribution, a local
server."""

from __future__ import annotations

import argparse
import functools
import http.server
import threading
from pathlib import Path

import torch

from tests.conftest import TINY_YAML, build_tiny

TINY = str(TINY_YAML)

# Options under which each built-in strategy matches nothing in a Hiera, and a fragment of the
# error that names what matched nothing.
MATCHES_NOTHING = {
    "adaptformer": ({"stages": (7,)}, "stages [7]"),
    "mona": ({"stages": (7,)}, "stages [7]"),
    "lora": ({"modules": ("attn.nothing",)}, "attn.nothing"),
    "qkv": ({"modules": ("nothing",)}, "module nothing"),
    "full": ({"include": r"nothing\..*"}, "include 'nothing"),
}


def adapted(name: str = "adaptformer", options: dict | None = None, seed: int = 3,
            scale: float = 0.05):
    """(model, strategy, trainable): the tiny SAM2 with strategy ``name`` injected and its
    parameters perturbed away from their initial values (a fresh adapter is a no-op)."""
    from sansa_cli.adapters.base import apply_strategy, build_strategy

    sam = build_tiny()
    strategy = build_strategy(name, options)
    trainable = apply_strategy(sam, strategy)
    perturb(trainable, seed, scale)
    return sam, strategy, trainable


def images(seed: int = 1) -> torch.Tensor:
    return torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def encode(sam, x: torch.Tensor) -> list[torch.Tensor]:
    """Every image-encoder output (vision features and FPN levels)."""
    out = sam.forward_image(x)
    return [out["vision_features"], *out["backbone_fpn"]]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@torch.no_grad()
def perturb(params: dict, seed: int = 3, scale: float = 0.05) -> None:
    gen = torch.Generator().manual_seed(seed)
    for p in params.values():
        p.add_(torch.randn(p.shape, generator=gen) * scale)


def write_training_checkpoint(run_dir: Path, strategy: str, config: dict, adapter: dict,
                              base_model: str = TINY, name: str = "latest.pt",
                              sha: str = "", **changes) -> Path:
    """A checkpoint in the layout `sansa train` writes (run_dir/checkpoints/NAME)."""
    blob = {
        "format": "sansa-train-checkpoint", "version": 1, "strategy": strategy,
        "strategy_config": config, "base_model": base_model, "base_overrides": {},
        "base_checkpoint_sha256": sha,
        "adapter": {k: v.detach().clone() for k, v in adapter.items()},
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}, "scheduler": {"last_epoch": 3},
        "step": 42, "rng": torch.get_rng_state(),
    }
    blob.update(changes)
    path = run_dir / "checkpoints" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob, path)
    return path


def official_state(dims: list[tuple[int, int]], blocks: list[int], ratio: float,
                   seed: int = 0) -> dict[str, torch.Tensor]:
    """Adapter tensors in the release's key layout for ``blocks`` of a Hiera with ``dims``."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for i in blocks:
        dim, dim_out = dims[i]
        width = int(dim * ratio)
        prefix = f"sam.image_encoder.trunk.blocks.{i}.adapter."
        for name, shape in (("adapter_layer_norm_before.weight", (dim_out,)),
                            ("adapter_layer_norm_before.bias", (dim_out,)),
                            ("down_proj.weight", (width, dim_out)), ("down_proj.bias", (width,)),
                            ("up_proj.weight", (dim_out, width)), ("up_proj.bias", (dim_out,))):
            state[prefix + name] = torch.randn(shape, generator=gen) * 0.1
    return state


def write_official(path: Path, state: dict, channel_factor: float | None = 0.3, **extra) -> Path:
    """A legacy torch.save file in the release's layout (with an argparse.Namespace)."""
    args = argparse.Namespace(adaptformer_stages=[2, 3], name_exp="x", shot=1)
    if channel_factor is not None:
        args.channel_factor = channel_factor
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": []},
                "lr_scheduler": {"last_epoch": 1}, "epoch": 4, "args": args, **extra}, path)
    return path


TINY_DIMS = [(16, 16), (16, 32), (32, 64), (64, 64), (64, 128), (128, 128)]
TINY_STAGE_BLOCKS = [2, 3, 4, 5]

THIRDPARTY_MODULE = '''
from dataclasses import dataclass, field
import torch
from torch import nn
from sansa_cli.adapters.base import AdapterStrategy

class Gain(AdapterStrategy):
    """A learnable per-channel gain on the last Hiera block's output (starts at 1)."""
    name = "thirdparty"

    @dataclass
    class Config:
        init: float = field(default=1.0, metadata={"help": "Initial gain."})

    def inject(self, model):
        block = model.image_encoder.trunk.blocks[-1]
        block.gain = nn.Parameter(torch.full((block.dim_out,), float(self.config.init)))
        block.register_forward_hook(lambda m, a, out: out * m.gain)

    def trainable_parameters(self, model):
        n = len(model.image_encoder.trunk.blocks) - 1
        block = model.image_encoder.trunk.blocks[-1]
        if not hasattr(block, "gain"):
            return {}
        return {f"image_encoder.trunk.blocks.{n}.gain": block.gain}
'''


def make_distribution(root: Path, dist: str, entries: dict[str, str],
                      module: tuple[str, str] | None = None) -> Path:
    """A throwaway installed distribution under ``root`` (put ``root`` on sys.path):
    ``*.dist-info`` with METADATA and entry_points.txt for the adapter group."""
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entries.items())
    (info / "entry_points.txt").write_text(f"[sansa_cli.adapters]\n{lines}")
    if module is not None:
        (root / f"{module[0]}.py").write_text(module[1])
    return root


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory: Path | None = None, handler=None):
    """Serve ``directory`` (or answer with the request ``handler`` class) on 127.0.0.1 from a
    thread; returns (base URL, server). Stop it with ``server.shutdown()``."""
    handler = handler or functools.partial(_Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server
