"""Validation during training: each dataset's evaluation episodes, scored with the eval code.

Every process runs its share of the episodes (``episodes[rank::world]``) with the current
adapters; rank 0 scores the gathered rows with the benchmark metric (class-wise mIoU). A mixture
is scored per dataset; the best checkpoint follows the mean over them. A dataset with no
evaluation split (ADE20K trains only) is skipped with a note.
"""

from __future__ import annotations

from sansa_cli.core import distributed
from sansa_cli.train.config import TrainConfig
from sansa_cli.train.mixture import MIX, Entry, dataset_fold, entries, has_eval_split


class Validator:
    """Scores the adapted model on a fixed list of one dataset's evaluation episodes."""

    def __init__(self, config: TrainConfig, rank: int, world: int, entry: Entry | None = None):
        from sansa_cli import registry

        entry = entry or entries(config)[0]
        cls = registry.load("dataset", entry.name)
        options = cls.options_for_shot(entry.options, config.val_shot)
        self.name = entry.name
        self.dataset = cls.create(entry.root, dataset_fold(config.fold), cls.eval_split,
                                  **options)
        self.episodes = self.dataset.episodes(config.val_shot, config.seed, config.val_episodes)
        self.mine = self.episodes[rank::world]
        self.canvas = self.dataset.default_canvas
        self.config = config

    def score(self, sam, device, precision: str) -> float | None:
        """Class-wise mIoU (percent) on rank 0; None on the other processes."""
        from sansa_cli.core.input_profile import SANSA_TRAINING
        from sansa_cli.core.segmenter import SansaModel
        from sansa_cli.evaluation.cache import FeatureCache
        from sansa_cli.evaluation.episodes import run_episode
        from sansa_cli.evaluation.report import score
        from sansa_cli.train.setup import frozen_mode

        sam.eval()  # adapters too: validation is inference
        try:
            model = SansaModel(sam, device, precision, SANSA_TRAINING, batch_size=1)
            cache = FeatureCache(max_mb=512)  # features change with the adapters: one pass only
            rows = [run_episode(model, self.dataset, episode, cache, self.canvas).row
                    for episode in self.mine]
        finally:
            frozen_mode(sam)
        gathered = distributed.gather_to_main(rows)
        if gathered is None:
            return None
        merged = [row for part in gathered for row in part]
        return score("adapted", self.dataset.fold, self.config.val_shot, self.dataset.classes,
                     merged).miou


class Validation:
    """One :class:`Validator` per dataset of the run that has an evaluation split."""

    def __init__(self, config: TrainConfig, rank: int, world: int):
        from sansa_cli import registry

        self.mixture = config.dataset == MIX
        self.validators: list[Validator] = []
        self.skipped: list[str] = []
        for entry in entries(config):
            if has_eval_split(registry.load("dataset", entry.name)):
                self.validators.append(Validator(config, rank, world, entry))
            else:
                self.skipped.append(entry.name)

    @property
    def episodes(self) -> int:
        return sum(len(v.episodes) for v in self.validators)

    def notes(self) -> list[str]:
        return [f"{name} has no evaluation split (it trains only), so validation skips it"
                for name in self.skipped]

    def score(self, sam, device, precision: str) -> dict[str, float] | None:
        """Dataset -> class-wise mIoU on rank 0; None on the other processes."""
        scores = {v.name: v.score(sam, device, precision) for v in self.validators}
        return None if None in scores.values() else scores

    def report(self, step: int, epoch: int, scores: dict[str, float]) -> tuple[dict, list[str]]:
        """The log row and the display lines of one validation (rank 0). ``val_miou`` is the
        dataset's mIoU, or the mean over a mixture's datasets (``val_datasets`` has each)."""
        mean = sum(scores.values()) / len(scores)
        row = {"step": step, "epoch": epoch, "val_miou": mean, "val_episodes": self.episodes}
        if not self.mixture:
            return row, [f"epoch {epoch}: validation mIoU {mean:.2f}"]
        sizes = {v.name: len(v.episodes) for v in self.validators}
        row["val_datasets"] = {n: {"miou": s, "episodes": sizes[n]} for n, s in scores.items()}
        row["val_skipped"] = self.skipped
        lines = [f"epoch {epoch}: validation mIoU {n} {s:.2f} ({sizes[n]} episodes)"
                 for n, s in scores.items()]
        lines += [f"epoch {epoch}: {n} not validated (no evaluation split)" for n in self.skipped]
        return row, [*lines, f"epoch {epoch}: validation mIoU {mean:.2f} (mean of "
                             f"{len(scores)} datasets)"]
