"""Bad input to ``sansa eval``: one line naming the value and the fix, exit 1, nothing written."""

from __future__ import annotations

import pytest

from sansa_cli import registry
from tests.cli_helpers import assert_one_line_error, run_sansa
from tests.eval_fixtures import eval_roots, model_args  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def lists(eval_roots, tmp_path_factory):
    """A 1-shot fold-0 episode list of fss1000, in a folder."""
    from sansa_cli.datasets.prepare import write_episode_lists

    root, options = eval_roots["fss1000"]
    folder = tmp_path_factory.mktemp("lists")
    rows = write_episode_lists(registry.load("dataset", "fss1000"), root, options, [0], [1],
                               folder, count=3)
    return folder, rows[0][3]


CASES = {
    "unknown dataset": (["--dataset", "nope"], ["unknown dataset 'nope'"]),
    "missing root": (["--data-root", "{tmp}/absent"], ["absent", "is not a folder"]),
    "pattern without a fold's file": (
        ["--adapters", "{tmp}/ad_fold{fold}.safetensors"], ["no file for fold 0", "ad_fold0"]),
    "missing adapter file": (["--adapters", "{tmp}/gone.safetensors"], ["gone.safetensors"]),
    "zero shots": (["--shots", "0"], ["--shots '0'", "positive"]),
    "shots not integers": (["--shots", "one"], ["--shots 'one'", "integers"]),
    "bad fold": (["--folds", "7"], ["no fold 7"]),
    "bad canvas": (["--canvas", "big"], ["--canvas 'big'", "original"]),
    "compare without adapters": (["--compare-frozen"], ["--compare-frozen", "--adapters"]),
    "bad dataset option": (["--dataset-option", "colour=red"], ["no option colour"]),
    "list of another dataset": (["--dataset", "pascal5i", "--episodes", "{list}"],
                                ["is for fss1000, not pascal5i"]),
    "list of another shot": (["--episodes", "{list}", "--shots", "5"], ["1-shot only"]),
    "folder without the shot's list": (["--episodes", "{lists}", "--shots", "5"],
                                       ["no episode list", "5shot"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case, eval_roots, lists, tiny_checkpoint, tmp_path, capsys, monkeypatch):
    extra, fragments = CASES[case]
    root, _ = eval_roots["fss1000"]
    fill = {"tmp": str(tmp_path), "list": str(lists[1]), "lists": str(lists[0])}
    extra = [a.replace("{tmp}", fill["tmp"]).replace("{list}", fill["list"])
             .replace("{lists}", fill["lists"]) for a in extra]
    out = tmp_path / "out"
    args = ["eval", "--dataset", "fss1000", "--data-root", root, "--out", out,
            "--episodes-per-fold", "2", *model_args(tiny_checkpoint)]
    code, _, err = run_sansa([*args, *extra], capsys, monkeypatch)
    assert_one_line_error(code, err, *fragments)
    assert not out.exists()


def test_the_model_must_be_named(eval_roots, tiny_checkpoint, tmp_path, capsys, monkeypatch):
    """No silent frozen-SAM2 run: --adapters must say which model is scored."""
    root, _ = eval_roots["fss1000"]
    code, _, err = run_sansa(["eval", "--dataset", "fss1000", "--data-root", root, "--out",
                              tmp_path / "o", "--sam2-checkpoint", tiny_checkpoint],
                             capsys, monkeypatch)
    assert_one_line_error(code, err, "--adapters none")
