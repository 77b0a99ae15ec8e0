"""Every registered strategy keeps no state between calls of an adapted Hiera block: running
the block again, running its submodules on their own, or recomputing it under activation
checkpointing gives the same results."""

from __future__ import annotations

import pytest
import torch
from torch.utils.checkpoint import checkpoint

from sansa_cli import registry
from tests.adapters_fixtures import adapted, images

PREFIX = "image_encoder.trunk.blocks."


def adapted_block(name: str):
    """(model, last Hiera block the strategy adapts, the stream that enters it for an image).

    The strategy's parameters are perturbed, so the adapter changes what the block computes."""
    sam, _, trainable = adapted(name)
    indices = [int(k[len(PREFIX):].split(".")[0]) for k in trainable if k.startswith(PREFIX)]
    if not indices:
        pytest.skip(f"'{name}' trains nothing inside the Hiera blocks")
    block = sam.image_encoder.trunk.blocks[max(indices)]
    seen = []
    handle = block.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    with torch.no_grad():
        sam.forward_image(images())
    handle.remove()
    return sam, block, seen[0]


@pytest.mark.parametrize("name", registry.names("adapter"))
def test_a_block_run_twice_gives_the_same_output(name):
    _, block, x = adapted_block(name)
    with torch.no_grad():
        assert torch.equal(block(x), block(x))


@pytest.mark.parametrize("name", registry.names("adapter"))
def test_submodules_run_alone_do_not_change_the_block(name):
    """E.g. ``block.norm2(y)`` called on its own between two calls of the block, as a feature
    probe would, leaves the block's output as it was; so does every other submodule."""
    _, block, x = adapted_block(name)
    other = torch.randn(x.shape, generator=torch.Generator().manual_seed(7)) * 3 + 1
    ran = []
    with torch.no_grad():
        expected = block(x)
        for path, module in block.named_modules():
            if not path:
                continue
            try:
                module(other)
            except (RuntimeError, TypeError, ValueError, IndexError):
                continue  # a submodule that takes another input shape
            ran.append(path)
            assert torch.equal(block(x), expected), f"after running {path} alone"
    assert {"norm1", "attn", "norm2", "mlp"} <= set(ran)


@pytest.mark.parametrize("name", registry.names("adapter"))
def test_activation_checkpointing_gives_the_plain_gradients(name):
    """A backward through ``checkpoint(block, use_reentrant=False)`` (the block runs again
    during the backward) gives the input and every trainable parameter the same gradients as
    a plain backward; modules train as in ``sansa train`` (dropout on)."""
    from sansa_cli.train.setup import frozen_mode

    sam, block, x = adapted_block(name)
    frozen_mode(sam)
    params = [p for p in block.parameters() if p.requires_grad]
    assert params
    weights = torch.randn(block(x).shape, generator=torch.Generator().manual_seed(8))

    def gradients(run):
        for p in params:
            p.grad = None
        stream = x.clone().requires_grad_()
        torch.manual_seed(0)  # the same dropout masks for both runs
        (run(stream) * weights).sum().backward()
        return [stream.grad, *(p.grad for p in params)]

    plain = gradients(block)
    recomputed = gradients(lambda t: checkpoint(block, t, use_reentrant=False))
    assert any(g is not None and g.abs().sum() > 0 for g in plain[1:])
    for a, b in zip(plain, recomputed, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)
