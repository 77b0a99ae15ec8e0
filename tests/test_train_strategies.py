"""``sansa train`` with every registered adapter strategy: one step on the tiny model."""

from __future__ import annotations

import pytest
import torch

from sansa_cli import registry
from sansa_cli.train.loop import Processes, Run
from tests.conftest import TINY_YAML
from tests.train_fixtures import adapter_tensors, config, setup  # noqa: F401  (setup: a fixture)


@pytest.mark.parametrize("name", registry.names("adapter"))
def test_a_step_changes_only_the_strategy_parameters_and_the_file_loads(name, setup, tmp_path):
    from sansa_cli import load_model
    from sansa_cli.train.setup import build_model

    cfg = config(setup, adapter=name, steps=1, seq_len=1)
    # the model a run starts from (adapters are seeded by the config, so this is the same one)
    start, _, initial, _ = build_model(cfg, Processes(0, 1), torch.device("cpu"))
    initial = {k: v.detach().clone() for k, v in initial.items()}
    run = Run(cfg, tmp_path / name, quiet=True)
    path = run.train()

    trained = adapter_tensors(tmp_path / name)
    assert set(trained) == set(initial) == set(run.parts.trainable)
    assert any(not torch.equal(trained[k], initial[k]) for k in initial), "nothing trained"
    before, after = start.state_dict(), run.parts.sam.state_dict()
    assert set(before) == set(after)
    for key in set(after) - set(initial):  # everything else is bit-identical
        assert torch.equal(after[key].cpu(), before[key]), key

    model = load_model(sam2=str(TINY_YAML), sam2_checkpoint=setup["ckpt"], adapters=path,
                       device="cpu")
    assert model.strategy.name == name
    loaded = model.strategy.trainable_parameters(model.sam)
    assert set(loaded) == set(trained)
    for key, value in trained.items():
        assert torch.equal(loaded[key].detach(), value), key
