"""Bad training input is one line before any work: run folders, plugin names, configs, dataset
files and masks, split files, resumed runs; progress without a terminal; eval's episode-list
folder defaults."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sansa_cli.errors import DatasetError
from sansa_cli.train.loop import Run
from tests.cli_helpers import assert_one_line_error, read_only_folder, run_sansa
from tests.datasets_fixtures import make_folder
from tests.train_fixtures import config, log_rows, setup  # noqa: F401  (setup is a fixture)

SPLITS = {"folds": [{"train": ["bolt", "nut"], "val": ["washer"], "test": ["washer"]}]}


@pytest.fixture()
def no_work(monkeypatch):
    """Building a model or downloading a checkpoint fails the test: checks must come first."""
    import sansa_cli.artifacts.download as download
    import sansa_cli.train.setup as setup_module

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the input was checked")

    monkeypatch.setattr(setup_module, "build_model", forbidden)
    monkeypatch.setattr(download, "download", forbidden)


@pytest.fixture()
def data(tmp_path) -> Path:
    """A fresh copy of the tiny folder dataset that a test may damage."""
    make_folder(tmp_path / "data")
    return tmp_path / "data"


def train_args(setup, data, out, *extra) -> list:
    return ["train", "--dataset", "folder", "--data-root", data, "--out", out,
            "--sam2", config(setup).sam2, "--sam2-checkpoint", setup["ckpt"], "--device", "cpu",
            "--workers", "0", "--batch-size", "2", "--seq-len", "1", "--steps", "1", *extra]


def train_error(args, capsys, monkeypatch, *fragments) -> str:
    code, _, err = run_sansa(args, capsys, monkeypatch)
    assert_one_line_error(code, err, *fragments)
    return err


# -- the run folder -------------------------------------------------------------------------------
@pytest.mark.parametrize("case, fragment", [
    ("file", "is a file"), ("below", "lies below the file"), ("readonly", "not writable")])
def test_bad_out_folder(case, fragment, setup, data, tmp_path, capsys, monkeypatch, no_work):
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    with read_only_folder(tmp_path / "ro") as read_only:
        out = {"file": blocker, "below": blocker / "run", "readonly": read_only / "run"}[case]
        train_error(train_args(setup, data, out), capsys, monkeypatch, "--out", fragment)


def test_a_second_run_in_one_run_folder_is_refused(setup, data, tmp_path, capsys, monkeypatch,
                                                   no_work):
    from sansa_cli.artifacts.files import output_lock

    out = tmp_path / "run"
    with output_lock(out):  # another run holds it
        train_error(train_args(setup, data, out), capsys, monkeypatch,
                    f"--out {out} is in use by another sansa run (pid {os.getpid()})")


# -- names, paths and the dataset before the base model --------------------------------------------
@pytest.mark.parametrize("args, fragment", [
    (["--dataset", "nope", "--data-root", "DATA"], "nope"),
    (["--dataset", "folder", "--data-root", "DATA", "--adapter", "nope"], "nope"),
    (["--dataset", "folder", "--data-root", "/no/such/dir"], "/no/such/dir"),
    (["--dataset", "folder", "--data-root", "DATA", "--dataset-option", "colour=red"],
     "no option colour"),
    (["--dataset", "folder", "--data-root", "DATA", "--sam2", "sam2_hiera_huge"],
     "sam2_hiera_huge"),
    (["--dataset", "folder", "--data-root", "DATA", "--sam2-checkpoint", "/no/such.pt"],
     "/no/such.pt"),
])
def test_names_and_paths_are_checked_before_any_download(args, fragment, data, tmp_path, capsys,
                                                         monkeypatch, no_work):
    """Without --sam2 the default base would be downloaded (900 MB): every name, option and
    path is checked first."""
    monkeypatch.setenv("SANSA_CHECKPOINTS", str(tmp_path / "empty"))
    args = [str(data) if a == "DATA" else a for a in args]
    train_error(["train", *args, "--out", tmp_path / "run", "--device", "cpu"], capsys,
                monkeypatch, fragment)
    assert not (tmp_path / "run").exists()


# -- the dataset's files and masks ---------------------------------------------------------------
@pytest.mark.parametrize("kind", ["image", "mask"])
def test_a_broken_file_is_named_with_the_count_before_training(kind, setup, data, tmp_path,
                                                               capsys, monkeypatch, no_work):
    broken = sorted((data / ("images" if kind == "image" else "masks") / "nut").iterdir())[1]
    broken.write_bytes(b"not an image at all")
    (data / "masks" / "washer" / "img2.png").unlink()  # a second problem, listed later
    err = train_error(train_args(setup, data, tmp_path / "run"), capsys, monkeypatch,
                      str(broken), "2 of the 18 files", "sansa prepare folder --data-root")
    assert "Traceback" not in err


def test_a_broken_validation_file_is_found_too(setup, data, tmp_path, capsys, monkeypatch,
                                               no_work):
    (data / "splits.json").write_text(json.dumps(SPLITS))
    broken = data / "masks" / "washer" / "img0.png"  # washer is only validated on
    broken.write_bytes(b"\x89PNG\r\n\x1a\n torn")
    train_error(train_args(setup, data, tmp_path / "run", "--val-episodes", "3"), capsys,
                monkeypatch, str(broken), "1 of the")


def test_a_file_the_header_check_passes_still_fails_in_one_line(setup, data, tmp_path, capsys,
                                                                monkeypatch):
    """A truncated JPEG opens (its header is whole) but cannot be decoded; in a data-loading
    worker process it still ends in one line, not the worker's traceback."""
    for path in (data / "images").rglob("*.jpg"):
        body = path.read_bytes()
        path.write_bytes(body[:len(body) // 2])
    args = train_args(setup, data, tmp_path / "run")
    args[args.index("--workers") + 1] = "1"
    err = train_error(args, capsys, monkeypatch, ".jpg")
    assert "Traceback" not in err and "worker" not in err


def test_empty_masks_are_refused_naming_what_was_read(setup, data, tmp_path, capsys, monkeypatch,
                                                      no_work):
    for path in (data / "masks").rglob("*.png"):
        Image.fromarray(np.zeros((18, 22), np.uint8)).save(path)
    train_error(train_args(setup, data, tmp_path / "run"), capsys, monkeypatch,
                "every training mask read is empty", "all 9")


def test_the_mask_check_reads_a_bounded_sample(data, monkeypatch):
    from sansa_cli import registry
    from sansa_cli.train import preflight

    dataset = registry.load("dataset", "folder").create(data, 0, "train")
    read = []
    monkeypatch.setattr(preflight, "MASK_SAMPLE", 4)
    monkeypatch.setattr(type(dataset), "load_mask",
                        lambda self, image, cid: read.append(cid) or np.zeros((2, 2), np.uint8))
    with pytest.raises(DatasetError, match="a sample of 4 taking the classes in turn"):
        preflight.check_masks(dataset)
    assert len(read) == 4 and set(read) == {0, 1, 2}


# -- the folder dataset's split file ---------------------------------------------------------------
@pytest.mark.parametrize("body, fragment", [
    ({"folds": [{"train": ["bolt"], "test": "nut"}]}, 'fold 0 "test" is "nut"'),
    ({"folds": [{"train": ["bolt"], "tset": ["nut"]}]}, "fold 0 has unknown key 'tset'"),
    ({"folds": [{"train": ["bolt", 3], "test": ["nut"]}]}, 'fold 0 "train" is ["bolt", 3]'),
    ({"folds": [{"train": [], "test": ["nut"]}]}, 'fold 0 "train" is []'),
    ({"folds": [{"train": ["bolt"], "test": ["nut"]}, ["washer"]]}, 'fold 1 is ["washer"]'),
    ({"folds": [{"train": ["bolt"], "test": ["nut"]}], "fold": 1}, "unknown key 'fold'"),
    ({"folds": {"train": ["bolt"]}}, "needs"),
    ({"folds": [{"train": ["bolt"], "test": ["nut"]}, {"train": ["bolt"], "val": ["nuts"]}]},
     "fold 1 \"val\" names class 'nuts'"),
])
def test_split_files_are_checked_whole_when_read(body, fragment, data):
    from sansa_cli import registry

    (data / "splits.json").write_text(json.dumps(body))
    with pytest.raises(DatasetError) as info:
        registry.load("dataset", "folder").create(data, 0, "train")
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_a_bad_split_file_stops_training_before_any_work(setup, data, tmp_path, capsys,
                                                         monkeypatch, no_work):
    (data / "splits.json").write_text(json.dumps({"folds": [{"train": ["bolt", "nut"],
                                                             "test": "washer"}]}))
    train_error(train_args(setup, data, tmp_path / "run"), capsys, monkeypatch,
                'fold 0 "test" is "washer"')


def test_without_a_split_file_the_dataset_says_splits_are_the_same(data):
    from sansa_cli import registry

    cls = registry.load("dataset", "folder")
    assert "train, val and test are the same images" in cls.create(data, 0, "test").notes()[0]
    (data / "splits.json").write_text(json.dumps(SPLITS))
    held_out = cls.create(data, 0, "test")
    assert held_out.notes() == [] and held_out.held_out


def test_training_warns_once_and_reports_progress_without_a_terminal(setup, tmp_path, capsys,
                                                                     monkeypatch):
    """Output piped: the split warning (one line), a line after the first step, and the
    singular "1 step"."""
    code, _, err = run_sansa(train_args(setup, setup["data"], tmp_path / "run",
                                        "--log-every", "50"), capsys, monkeypatch)
    assert code == 0, err
    lines = err.strip().splitlines()
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert len(warnings) == 1 and "no split file" in warnings[0]
    assert any(line.startswith("step 1/1 ") for line in lines), err
    assert lines[-1].startswith("trained 1 step; adapter written to"), err


def test_the_plain_display_is_never_silent_for_long(capsys):
    from sansa_cli.train.display import TrainDisplay

    display = TrainDisplay(10, 0, True, progress_seconds=0.2)
    display.update(1, 0, 0.5, 1e-4, 1.0, log_line=False)  # the first step: always a line
    display.update(2, 0, 0.5, 1e-4, 1.0, log_line=False)  # soon after: quiet
    time.sleep(0.6)  # a long step: the display says it is still working
    display.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("step 1/10 ") and not any(x.startswith("step 2/10 ") for x in lines)
    assert any("still working" in line for line in lines[1:]), lines


# -- configuration files and flags: one rule set ---------------------------------------------------
@pytest.mark.parametrize("key, value, fragment", [
    ("lr", "abc", "lr in run.yaml is 'abc', not a number"),
    ("lr", 0, "lr in run.yaml is 0.0; it must be above 0"),
    ("epochs", [1, 2], "epochs in run.yaml is [1, 2], not a whole number"),
    ("workers", -1, "workers in run.yaml is -1; it must be at least 0"),
    ("batch_size", 0, "batch_size in run.yaml is 0; it must be at least 1"),
    ("seed", 1.5, "seed in run.yaml is 1.5, not a whole number"),
    ("fold", True, "fold in run.yaml is True, not a whole number"),
    ("augment", "yes", "augment in run.yaml is 'yes', not true or false"),
    ("grad_clip", float("nan"), "grad_clip in run.yaml is nan; give a finite number"),
    ("dataset_options", ["splits"], "dataset_options in run.yaml is ['splits'], not a mapping"),
    ("loss", "l2", "unknown loss 'l2' (loss in run.yaml)"),
    ("sam2", 5, "sam2 in run.yaml is 5, not text"),
    ("progress_seconds", -1, "progress_seconds in run.yaml is -1.0; it must be at least 0"),
    ("colour", "red", "unknown training settings colour in"),
])
def test_bad_config_values_are_one_line(key, value, fragment, setup, tmp_path, capsys,
                                        monkeypatch, no_work):
    import yaml

    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"dataset": "folder", "data_root": str(setup["data"]),
                                   key: value}))
    train_error(["train", "--config", cfg, "--out", tmp_path / "run"], capsys, monkeypatch,
                fragment.replace("run.yaml", str(cfg)))


@pytest.mark.parametrize("flag, value, fragment", [
    ("--workers", "-1", "--workers is -1; it must be at least 0"),
    ("--lr", "0", "--lr is 0.0; it must be above 0"),
    ("--progress-seconds", "-5", "--progress-seconds is -5.0"),
    ("--val-shot", "0", "--val-shot is 0"),
    ("--prompt", "lasso", "unknown prompt 'lasso' (--prompt)"),
])
def test_bad_flags_follow_the_same_rules(flag, value, fragment, setup, data, tmp_path, capsys,
                                         monkeypatch, no_work):
    train_error(train_args(setup, data, tmp_path / "run", flag, value), capsys, monkeypatch,
                fragment)


def test_yaml_exponents_without_a_dot_are_numbers(setup, tmp_path):
    from sansa_cli.train.config import load_config

    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"dataset: folder\ndata_root: {setup['data']}\nlr: 1e-4\nworkers: 0\n")
    assert load_config(cfg, {}).lr == 1e-4  # PyYAML reads `1e-4` as text


# -- resuming ------------------------------------------------------------------------------------
def test_resume_without_a_checkpoint_says_missing(setup, tmp_path, capsys, monkeypatch, no_work):
    from sansa_cli.train.config import save_config

    run = tmp_path / "run"
    run.mkdir()
    save_config(config(setup), run / "config.yaml")
    train_error(["train", "--resume", run], capsys, monkeypatch, "missing",
                "no checkpoint to resume", f"--out {run}")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "latest.pt").write_bytes(b"PK\x03\x04 torn")
    train_error(["train", "--resume", run], capsys, monkeypatch, "corrupt or truncated")


def test_resume_drops_a_torn_last_log_line(setup, tmp_path, capsys, monkeypatch):
    cfg = config(setup, steps=2, seq_len=1)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        Run(cfg, run, stop_at_step=1, quiet=True).train()
    with (run / "log.jsonl").open("a") as f:
        f.write('{"step": 2, "epoch": 0, "lo')  # a crash mid-write
    code, _, err = run_sansa(["train", "--resume", run, "--workers", "0"], capsys, monkeypatch)
    assert code == 0, err
    assert [r["step"] for r in log_rows(run)] == [1, 2]


def test_resume_names_a_corrupt_log_line_before_any_work(setup, tmp_path, capsys, monkeypatch):
    cfg = config(setup, steps=2, seq_len=1)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        Run(cfg, run, stop_at_step=1, quiet=True).train()
    body = (run / "log.jsonl").read_text()
    (run / "log.jsonl").write_text("garbage\n" + body)
    import sansa_cli.train.setup as setup_module

    monkeypatch.setattr(setup_module, "build_model", lambda *a: pytest.fail("model built"))
    train_error(["train", "--resume", run, "--workers", "0"], capsys, monkeypatch,
                "log.jsonl line 1 is corrupt")


def test_resume_may_change_how_progress_is_shown(setup, tmp_path, capsys, monkeypatch, no_work):
    from sansa_cli.train.config import save_config

    run = tmp_path / "run"
    run.mkdir()
    save_config(config(setup), run / "config.yaml")
    # accepted (the run then stops on its missing checkpoint, not on the flags)
    train_error(["train", "--resume", run, "--progress-seconds", "5", "--log-every", "1"],
                capsys, monkeypatch, "no checkpoint to resume")


# -- sansa eval --episodes DIR: what the folder holds is the default -------------------------------
@pytest.fixture()
def two_folds(data) -> Path:
    (data / "splits.json").write_text(json.dumps({"folds": [
        {"train": ["bolt"], "test": ["nut", "washer"]},
        {"train": ["nut"], "test": ["bolt", "washer"]}]}))
    return data


def _plan(data, lists, tmp_path, **job):
    from sansa_cli.evaluation import EvalJob, build_plan

    plan = build_plan(EvalJob(dataset="folder", data_root=data, out=tmp_path / "o",
                              episodes=lists, adapters="none", **job))
    return [(t.fold, t.shot) for t in plan.tasks]


def test_eval_episode_folder_defaults_to_its_folds_and_shots(two_folds, tmp_path):
    from sansa_cli import registry
    from sansa_cli.datasets.prepare import write_episode_lists

    cls = registry.load("dataset", "folder")
    lists = tmp_path / "lists"
    write_episode_lists(cls, two_folds, {}, [1], [1], lists)
    assert _plan(two_folds, lists, tmp_path) == [(1, 1)]
    with pytest.raises(FileNotFoundError, match="folder_fold0_test_1shot_seed0.json"):
        _plan(two_folds, lists, tmp_path, folds="all")  # asked for: every fold of the dataset
    write_episode_lists(cls, two_folds, {}, [1], [2], lists)
    assert _plan(two_folds, lists, tmp_path) == [(1, 1), (1, 2)]
    write_episode_lists(cls, two_folds, {}, [0], [1], lists)
    assert _plan(two_folds, lists, tmp_path, shots="1") == [(0, 1), (1, 1)]
    assert _plan(two_folds, lists, tmp_path, shots="2") == [(1, 2)]
    assert _plan(two_folds, lists, tmp_path, folds="1") == [(1, 1), (1, 2)]
    with pytest.raises(FileNotFoundError, match="folder_fold0_test_2shot_seed0.json"):
        _plan(two_folds, lists, tmp_path)  # fold 0 has no 2-shot list: named, not skipped
    with pytest.raises(FileNotFoundError, match="no episode list folder_fold0_test_5shot"):
        _plan(two_folds, lists, tmp_path, shots="5")
    with pytest.raises(FileNotFoundError, match="seed 3"):
        _plan(two_folds, lists, tmp_path, seed=3)


def test_eval_episode_folder_with_one_shot_lists_runs_by_default(tmp_path, capsys, monkeypatch):
    """`sansa eval --episodes DIR` after `sansa prepare --episodes --shots 1`: no 5-shot list is
    asked for (only the plan is built: the run itself is replaced)."""
    import sansa_cli.evaluation as evaluation
    from sansa_cli import registry
    from sansa_cli.datasets.prepare import write_episode_lists
    from sansa_cli.evaluation import build_plan

    root = tmp_path / "data"
    make_folder(root)
    write_episode_lists(registry.load("dataset", "folder"), root, {}, [0], [1], tmp_path / "ep")
    plans = []
    monkeypatch.setattr(evaluation, "run_eval", lambda job, console: plans.append(build_plan(job)))
    code, _, err = run_sansa(["eval", "--dataset", "folder", "--data-root", root, "--episodes",
                              tmp_path / "ep", "--adapters", "none", "--out", tmp_path / "o"],
                             capsys, monkeypatch)
    assert code == 0, err
    assert [(t.fold, t.shot) for t in plans[0].tasks] == [(0, 1)]

