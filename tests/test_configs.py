"""The paper's training recipes in ``configs/``: each file loads through the real config loader
(as ``sansa train --config FILE --data-root ...`` does) and holds the paper's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from sansa_cli import registry
from sansa_cli.adapters.base import build_strategy
from sansa_cli.train.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# The paper's figures (SANSA, NeurIPS 2025, arXiv 2505.21795: "Loss & Training" and the ablation
# tables), as the paper summary and the method note give them.
PAPER_LR = 1e-4  # "AdamW optimizer with learning rate 10^-4"
PAPER_J = 3  # "Training uses k=1 (single reference) and sequence length J=3"
PAPER_EPOCHS = 5  # "5 epochs for the standard FSS setting"
PAPER_EPOCHS_GENERALIZATION = 20  # "20 epochs for the generalization setting"
PAPER_STAGES = (2, 3)  # adapters in "the last two layers": "Adapting late stages (2-3)"
PAPER_BOTTLENECK = 0.3  # "AdaptFormer (0.3x bottleneck)", the benchmark models
# Where the paper gives no figure, the release's (method note, generalization note section 8).
RELEASE_GENERALIST_BOTTLENECK = 0.8  # "Ratio ... 0.8 for the released generalist"
RELEASE_BATCH = 32  # "global batch 32"
RELEASE_MIX = {"coco20i": 0.45, "lvis92i": 0.4, "ade20k": 0.1, "paco_part": 0.05}
RELEASE_EPISODES_PER_EPOCH = 210_000  # "One epoch = 210,000 samples, hard-coded"


def benchmark_files() -> dict[str, tuple[str, int]]:
    """File name -> (dataset, fold): one file per fold of each benchmark the paper trains."""
    files = {"fss1000.yaml": ("fss1000", 0)}
    for name in ("coco20i", "lvis92i"):
        for fold in range(registry.load("dataset", name).num_folds):
            files[f"{name}_fold{fold}.yaml"] = (name, fold)
    return files


def test_the_folder_holds_one_recipe_per_benchmark_fold_and_the_generalist():
    expected = {*benchmark_files(), "generalist.yaml"}
    assert {p.name for p in CONFIGS.glob("*.yaml")} == expected
    assert len([f for f in expected if f.startswith("lvis92i_")]) == 10


def check_paper_settings(config, bottleneck: float, epochs: int) -> None:
    assert config.lr == PAPER_LR
    assert config.seq_len == PAPER_J
    assert config.epochs == epochs
    assert config.batch_size == RELEASE_BATCH
    assert config.loss == "bce-dice" and config.sam2 == "sam2_hiera_large"
    assert not config.object_score_head
    strategy = build_strategy(config.adapter, config.adapter_options)
    assert config.adapter == "adaptformer"
    assert strategy.config.bottleneck == bottleneck
    assert strategy.config.stages == PAPER_STAGES


@pytest.mark.parametrize("file", sorted(benchmark_files()))
def test_benchmark_recipes(file, tmp_path):
    dataset, fold = benchmark_files()[file]
    config = load_config(CONFIGS / file, {"data_root": str(tmp_path)})
    assert (config.dataset, config.fold) == (dataset, fold)
    assert config.data_root == str(tmp_path.resolve())  # the command line gives the folder
    check_paper_settings(config, PAPER_BOTTLENECK, PAPER_EPOCHS)
    assert config.episodes_per_epoch is None


def test_the_generalist_recipe(tmp_path):
    roots = {name: str((tmp_path / name).resolve()) for name in RELEASE_MIX}
    config = load_config(CONFIGS / "generalist.yaml", {"data_root": roots})
    assert config.dataset == "mix" and config.mix == RELEASE_MIX
    assert config.fold == "all" and config.data_root == roots
    assert config.episodes_per_epoch == RELEASE_EPISODES_PER_EPOCH
    check_paper_settings(config, RELEASE_GENERALIST_BOTTLENECK, PAPER_EPOCHS_GENERALIZATION)
    changed = load_config(CONFIGS / "generalist.yaml", {"data_root": roots, "epochs": 1})
    assert changed.epochs == 1  # a flag wins over the file


def test_a_flag_changes_one_adapter_option_and_keeps_the_files_others():
    from sansa_cli.train.config import load_config

    config = load_config(CONFIGS / "generalist.yaml", {"adapter_options": {"bottleneck": 0.5}})
    assert config.adapter_options["bottleneck"] == 0.5
    assert list(config.adapter_options["stages"]) == [2, 3]
    other = load_config(CONFIGS / "generalist.yaml", {"adapter": "lora",
                                                      "adapter_options": {"rank": 4}})
    assert other.adapter_options == {"rank": 4}  # another strategy: the file's options are not its
