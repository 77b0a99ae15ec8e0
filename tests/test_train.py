"""``sansa train`` on the tiny model: the chain, resumption, interruption, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sansa_cli.train.loop import Run, TrainingDiverged
from tests.cli_helpers import assert_one_line_error, run_sansa
from tests.train_fixtures import adapter_tensors, config, training_setup


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return training_setup(tmp_path_factory.mktemp("train"))


def test_only_adapters_change_and_the_file_works(setup, tmp_path):
    from sansa_cli import load_model

    run = Run(config(setup), tmp_path / "run", quiet=True)
    path = run.train()
    sam = run.parts.sam
    frozen = {k: v for k, v in sam.state_dict().items() if k not in run.parts.trainable}
    original = torch.load(setup["ckpt"], weights_only=True)["model"]
    for key, value in frozen.items():  # the frozen SAM2 is bit-identical after training
        assert torch.equal(value.cpu(), original[key]), key
    trained = adapter_tensors(tmp_path / "run")
    assert any(k.endswith("up_proj.weight") and v.abs().sum() > 0 for k, v in trained.items())
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1)) and len(rows) == 8
    model = load_model(checkpoint=setup["ckpt"], adapters=path, device="cpu")
    image = setup["data"] / "images"
    first = sorted(p for p in image.rglob("*") if p.is_file())
    mask = sorted(p for p in (setup["data"] / "masks").rglob("*") if p.is_file())
    assert model.predict([(first[0], mask[0])], [first[1]])[0].mask.ndim == 2


def test_interrupted_then_resumed_equals_uninterrupted(setup, tmp_path):
    whole = tmp_path / "whole"
    Run(config(setup), whole, quiet=True).train()
    parts = tmp_path / "parts"
    with pytest.raises(KeyboardInterrupt):
        Run(config(setup), parts, stop_at_step=3, quiet=True).train()
    assert torch.load(parts / "checkpoints" / "latest.pt", weights_only=True)["step"] == 3
    Run(config(setup), parts, resume=True, quiet=True).train()
    a, b = adapter_tensors(whole), adapter_tensors(parts)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps = [json.loads(line)["step"] for line in (parts / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))  # no step logged twice


def test_release_recipe_and_focal_loss_run(setup, tmp_path):
    Run(config(setup, seq_len=1, loss="focal-dice", steps=2), tmp_path / "r", quiet=True).train()
    assert (tmp_path / "r" / "adapter.safetensors").is_file()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(setup, tmp_path, monkeypatch):
    import sansa_cli.train.chain as chain

    real = chain.mask_loss
    calls = {"n": 0}

    def poisoned(*args):
        calls["n"] += 1
        loss = real(*args)
        return loss * float("nan") if calls["n"] > 8 else loss  # seq_len 2: step 5 onwards

    monkeypatch.setattr(chain, "mask_loss", poisoned)
    run = tmp_path / "nan"
    with pytest.raises(TrainingDiverged, match="nan at step 5"):
        Run(config(setup, save_every=2), run, quiet=True).train()
    assert torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["step"] == 4


def test_config_file_with_flag_overrides(setup, tmp_path, capsys, monkeypatch):
    import yaml

    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"dataset": "folder", "data_root": str(setup["data"]),
                                   "sam2": str(config(setup).sam2), "steps": 1, "lr": 5e-4,
                                   "workers": 0, "batch_size": 2, "seq_len": 1}))
    code, _, err = run_sansa(["train", "--config", cfg, "--lr", "2e-4", "--sam2-checkpoint",
                              setup["ckpt"], "--device", "cpu", "--out", tmp_path / "c"],
                             capsys, monkeypatch)
    assert code == 0, err
    saved = yaml.safe_load((tmp_path / "c" / "config.yaml").read_text())
    assert saved["lr"] == 2e-4 and saved["steps"] == 1


@pytest.mark.parametrize("args, fragment", [
    (["--dataset", "nope", "--data-root", "."], "unknown dataset"),
    (["--dataset", "folder", "--data-root", "/no/such/dir"], "not a folder"),
    (["--dataset", "folder", "--data-root", "DATA", "--loss", "l2"], "unknown loss"),
    (["--dataset", "folder", "--data-root", "DATA", "--batch-size", "3", "--episodes-per-epoch",
      "2"], "smaller than the batch"),
    (["--dataset", "folder", "--data-root", "DATA", "--adapter", "lora", "--bottleneck", "0.3"],
     "no option bottleneck"),
])
def test_bad_training_input(args, fragment, setup, tmp_path, capsys, monkeypatch):
    args = [str(setup["data"]) if a == "DATA" else a for a in args]
    code, _, err = run_sansa(["train", *args, "--out", tmp_path / "bad", "--sam2",
                              config(setup).sam2, "--sam2-checkpoint", setup["ckpt"],
                              "--device", "cpu", "--workers", "0"], capsys, monkeypatch)
    assert_one_line_error(code, err, fragment)


def test_two_gloo_processes_agree_with_one(setup, tmp_path):
    """torchrun with 2 CPU processes (gloo): the run finishes, the processes' weights agree
    (checked inside the run) and match a single-process run up to floating-point noise, and
    each process has really left the process group (no gloo thread outlives the run: one that
    does can abort a finished worker at exit)."""
    import os
    import subprocess
    import sys

    import yaml

    cfg = config(setup, steps=3, episodes_per_epoch=4, epochs=1, val_episodes=3)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--standalone", str(Path(__file__).parent / "torchrun_worker.py"), "train", "--config",
         str(tmp_path / "run.yaml"), "--out", str(tmp_path / "ddp")],
        capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-6000:]
    Run(cfg, tmp_path / "single", quiet=True).train()
    ddp, single = adapter_tensors(tmp_path / "ddp"), adapter_tensors(tmp_path / "single")
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], rtol=1e-4, atol=1e-6)


def test_mixed_prompt_training(setup, tmp_path):
    """References marked by random prompts (points, box, scribble or mask), as the authors'
    universal model was trained; the run completes and the adapters move."""
    from sansa_cli.train.episode_data import EpisodeTensors, epoch_episodes
    from sansa_cli import registry

    dataset = registry.load("dataset", "folder").create(str(setup["data"]), 0, "train")
    episodes = epoch_episodes(dataset, 0, 0, 24, 2)
    data = EpisodeTensors(dataset, episodes, list(range(24)), 256, "pil-bicubic", False, 0, 0,
                          "mixed")
    counts = [int(data[i]["prompt_count"]) for i in range(24)]
    assert any(c == 0 for c in counts) and any(c > 0 for c in counts)  # masks and prompts
    assert counts == [int(data[i]["prompt_count"]) for i in range(24)]  # deterministic
    Run(config(setup, prompt="mixed", steps=3), tmp_path / "mixed", quiet=True).train()
    trained = adapter_tensors(tmp_path / "mixed")
    assert any(v.abs().sum() > 0 for k, v in trained.items() if "up_proj" in k)


def test_validation_every_epoch_picks_the_best_checkpoint(setup, tmp_path):
    run = tmp_path / "val"
    Run(config(setup, val_episodes=4), run, quiet=True).train()
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    scores = [r for r in rows if "val_miou" in r]
    assert [r["epoch"] for r in scores] == [0, 1]
    assert all(0 <= r["val_miou"] <= 100 for r in scores)
    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    assert best["best"] == max(r["val_miou"] for r in scores)
    assert (run / "adapter_best.safetensors").is_file()


def test_sigint_saves_a_checkpoint_and_exits_cleanly(setup, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    cfg = config(setup, steps=500, save_every=0)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    run = tmp_path / "sig"
    proc = subprocess.Popen([sys.executable, "-m", "sansa_cli", "train", "--config",
                             str(tmp_path / "run.yaml"), "--out", str(run)],
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    log = run / "log.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (log.exists() and log.read_text().count("\n") >= 2):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("stopped at step")  # how to continue
    saved = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["step"]
    logged = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert saved == logged[-1] >= 2 and "Traceback" not in err
