"""Every ``sansa`` command in the code blocks of README.md and docs/reproducing.md parses as
written.

Each command line (``\\`` continuations joined; ``torchrun ... -m sansa_cli CMD`` read as
``sansa CMD``) runs through the real entry point with the library function its command calls
replaced by a recorder, so nothing is loaded, downloaded or written: the test shows that the
options exist, their values are accepted, and the command reaches its library call.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from tests.cli_helpers import run_sansa

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
#: the pages whose commands are tested: README.md and the reproduction guide
PAGES = (README, REPO / "docs" / "reproducing.md")

#: command -> the library functions it may call (module, name); the recorder replaces them
ENTRY_POINTS = {
    "predict": [("sansa_cli.predict.job", "run_predict")],
    "export-onnx": [("sansa_cli.onnx.export", "export_onnx")],
    "train": [("sansa_cli.train.job", "run_train")],
    "eval": [("sansa_cli.evaluation", "run_eval")],
    "prepare": [("sansa_cli.datasets.prepare", "prepare_dataset"),
                ("sansa_cli.datasets.prepare", "write_episode_lists")],
    "export-adapters": [("sansa_cli.artifacts.train_checkpoint", "export_training_checkpoint"),
                        ("sansa_cli.artifacts.official", "convert_official"),
                        ("sansa_cli.artifacts.adapter_file", "describe")],
    "visualize-features": [("sansa_cli.visualize.features_pca", "visualize_features")],
}

#: README commands that do not parse today: the README needs the fix in the reason
# A README example that does not parse is a README bug: list it here with the fix, as a strict
# xfail, until the README is corrected.
README_BUGS: dict[str, str] = {}


def readme_commands(text: str) -> list[str]:
    """The ``sansa`` command lines of the fenced code blocks of ``text``, in order."""
    commands = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.M | re.S):
        joined = re.sub(r"\\\n\s*", "", block)
        for line in joined.splitlines():
            if not line.lstrip().startswith(("sansa ", "torchrun ")):
                continue  # other tools, and Python blocks
            words = shlex.split(line, comments=True)
            if words[:1] == ["torchrun"] and "-m" in words:
                at = words.index("-m")
                if words[at + 1:at + 2] == ["sansa_cli"]:
                    words = ["sansa", *words[at + 2:]]
            if words[:1] == ["sansa"]:
                commands.append(shlex.join(words))
    return commands


COMMANDS = readme_commands(README.read_text())
#: page -> its commands
PAGE_COMMANDS = {page: readme_commands(page.read_text()) for page in PAGES}


def _cases():
    for page, commands in PAGE_COMMANDS.items():
        for command in commands:
            marks = []
            if command in README_BUGS:
                marks.append(pytest.mark.xfail(strict=True, reason=README_BUGS[command]))
            yield pytest.param(command, marks=marks, id=f"{page.stem}:{command[6:60]}")


def test_the_readme_has_commands_of_every_documented_kind():
    kinds = {shlex.split(c)[1] for c in COMMANDS}
    assert {"predict", "train", "eval", "prepare", "export-adapters",
            "visualize-features"} <= kinds, kinds
    assert any(c.startswith("sansa train --config") for c in COMMANDS)  # from torchrun
    assert not any("\\" in c for c in COMMANDS)


def test_the_reproduction_guide_has_every_step():
    commands = PAGE_COMMANDS[PAGES[1]]
    kinds = {shlex.split(c)[1] for c in commands}
    assert {"export-adapters", "prepare", "eval"} <= kinds, kinds
    evaluated = {shlex.split(c)[shlex.split(c).index("--dataset") + 1]
                 for c in commands if shlex.split(c)[1] == "eval"}
    assert evaluated == {"coco20i", "lvis92i", "fss1000"}  # every table sansa can evaluate


def test_known_readme_bugs_are_still_in_the_readme():
    """Once the README is fixed, drop its entry from README_BUGS."""
    assert set(README_BUGS) <= {c for commands in PAGE_COMMANDS.values() for c in commands}


@pytest.mark.parametrize("command", list(_cases()))
def test_readme_command_parses(command, tmp_path, capsys, monkeypatch):
    import importlib

    from sansa_cli.datasets.prepare import CheckReport

    monkeypatch.chdir(tmp_path)  # relative paths point nowhere: nothing may be read or written
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    words = [os.path.expanduser(os.path.expandvars(w)) for w in shlex.split(command)]
    calls = []

    def recorder(name):
        def record(*args, **kwargs):
            calls.append((name, args, kwargs))
            if name == "prepare_dataset":
                return None, CheckReport(words[2], tmp_path)
            if name in ("write_episode_lists", "visualize_features"):
                return []
            if name == "describe":
                return "described"
            return tmp_path / "written.safetensors"
        return record

    if words[1] not in ENTRY_POINTS:
        pytest.fail(f"add the library function `sansa {words[1]}` calls to ENTRY_POINTS")
    for module, name in ENTRY_POINTS[words[1]]:
        monkeypatch.setattr(importlib.import_module(module), name, recorder(name))
    code, _, err = run_sansa(words[1:], capsys, monkeypatch)
    assert code == 0, f"{command}\n{err}"
    assert calls, f"{command} never reached its library function"
