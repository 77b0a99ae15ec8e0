"""``sansa train`` on the tiny model: the chain, resumption, interruption, fp16, bad input,
and (slow) two gloo processes under torchrun."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sansa_cli.train.loop import Run, TrainingDiverged
from tests.cli_helpers import assert_one_line_error, run_sansa
from tests.conftest import TINY_YAML
from tests.train_fixtures import (adapter_tensors, config, latest_checkpoint, log_rows,
                                  setup)  # noqa: F401  (setup is a fixture)


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
    rows = log_rows(tmp_path / "run")
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1)) and len(rows) == 8
    model = load_model(sam2=str(TINY_YAML), sam2_checkpoint=setup["ckpt"], adapters=path,
                       device="cpu")
    image = setup["data"] / "images"
    first = sorted(p for p in image.rglob("*") if p.is_file())
    mask = sorted(p for p in (setup["data"] / "masks").rglob("*") if p.is_file())
    assert model.predict([(first[0], mask[0])], [first[1]])[0].mask.ndim == 2


def test_interrupted_then_resumed_through_the_cli_equals_uninterrupted(setup, tmp_path, capsys,
                                                                       monkeypatch):
    """A run stopped at step 3 (as Ctrl-C stops it) and continued with
    ``sansa train --resume RUN_DIR`` ends with exactly the weights of an uninterrupted run."""
    whole = tmp_path / "whole"
    Run(config(setup), whole, quiet=True).train()
    parts = tmp_path / "parts"
    with pytest.raises(KeyboardInterrupt):
        Run(config(setup), parts, stop_at_step=3, quiet=True).train()
    assert latest_checkpoint(parts)["step"] == 3
    assert not (parts / "adapter.safetensors").exists()
    code, _, err = run_sansa(["train", "--resume", parts, "--workers", "0"], capsys, monkeypatch)
    assert code == 0, err
    assert latest_checkpoint(parts)["step"] == 8
    a, b = adapter_tensors(whole), adapter_tensors(parts)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [r["step"] for r in log_rows(parts)] == list(range(1, 9))  # no step logged twice


def test_fp16_scales_the_loss_and_resumes_with_the_scaler_state(setup, tmp_path):
    """``--precision fp16`` trains through a GradScaler; its state is saved in the checkpoint
    and restored on resume (an interrupted run then ends exactly as an uninterrupted one)."""
    cfg = config(setup, precision="fp16", steps=2, seq_len=1)
    whole = tmp_path / "whole"
    Run(cfg, whole, quiet=True).train()
    parts = tmp_path / "parts"
    with pytest.raises(KeyboardInterrupt):
        Run(cfg, parts, stop_at_step=1, quiet=True).train()
    saved = latest_checkpoint(parts)
    assert saved["step"] == 1 and saved["scaler"] is not None and saved["scaler"]["scale"] > 0
    Run(cfg, parts, resume=True, quiet=True).train()
    # the scaler's state counts its steps: one restarted from scratch would end elsewhere
    assert latest_checkpoint(parts)["scaler"] == latest_checkpoint(whole)["scaler"]
    a, b = adapter_tensors(whole), adapter_tensors(parts)
    assert all(torch.isfinite(v).all() for v in a.values())
    assert any(v.abs().sum() > 0 for k, v in a.items() if "up_proj" in k)  # the step was taken
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("args, fragment", [
    (["--dataset", "folder"], "give --out RUN_DIR"),
    (["--resume", "EMPTY"], "holds no config.yaml"),
    (["--resume", "RUN", "--lr", "0.1"], "drop --lr"),
    (["--out", "RUN", "--dataset", "folder", "--data-root", "DATA", "--sam2", "SAM2",
      "--sam2-checkpoint", "CKPT", "--device", "cpu"], "--resume"),
])
def test_bad_resume(args, fragment, setup, tmp_path, capsys, monkeypatch):
    """--out and --resume exclude each other; a resumed run takes its saved settings; a new
    run does not overwrite an old one."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "latest.pt").write_bytes(b"")
    (run / "config.yaml").write_text("{}")
    (tmp_path / "empty").mkdir()
    fill = {"EMPTY": tmp_path / "empty", "RUN": run, "DATA": setup["data"],
            "SAM2": config(setup).sam2, "CKPT": setup["ckpt"]}
    code, _, err = run_sansa(["train", *[fill.get(a, a) for a in args]], capsys, monkeypatch)
    assert_one_line_error(code, err, fragment)
    assert sorted(p.name for p in run.rglob("*")) == ["checkpoints", "config.yaml", "latest.pt"]


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
    assert latest_checkpoint(run)["step"] == 4


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


@pytest.mark.slow
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


def test_processes_split_each_global_batch_in_rank_order():
    """The fast counterpart of the two-process test's premise: at every step the processes'
    episodes, taken in rank order, are exactly those of the single-process run's batch (also
    when resuming mid-epoch)."""
    from sansa_cli.train.episode_data import rank_indices

    for first_step, steps, batch in [(0, 3, 4), (2, 5, 6)]:
        single = rank_indices(first_step, steps, batch, 0, 1)
        assert single == list(range(first_step * batch, steps * batch))
        for world in (2, 3) if batch % 3 == 0 else (2,):
            shards = [rank_indices(first_step, steps, batch, r, world) for r in range(world)]
            per = batch // world
            for k in range(steps - first_step):
                step = [i for shard in shards for i in shard[k * per:(k + 1) * per]]
                assert step == single[k * batch:(k + 1) * batch]


def test_mixed_prompt_training(setup, tmp_path):
    """References marked by random prompts (points, box, scribble or mask), as the authors'
    universal model was trained; the run completes and the adapters move."""
    from sansa_cli.core.input_profile import SANSA_TRAINING
    from sansa_cli.train.episode_data import EpisodeTensors, epoch_episodes
    from sansa_cli import registry

    dataset = registry.load("dataset", "folder").create(str(setup["data"]), 0, "train")
    episodes = epoch_episodes(dataset, 0, 0, 24, 2)
    data = EpisodeTensors(dataset, episodes, list(range(24)), 256, SANSA_TRAINING, False, 0, 0,
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
    scores = [r for r in log_rows(run) if "val_miou" in r]
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
    saved = latest_checkpoint(run)["step"]
    logged = [r["step"] for r in log_rows(run)]
    assert saved == logged[-1] >= 2 and "Traceback" not in err
