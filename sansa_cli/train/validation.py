"""Validation during training: the fold's evaluation episodes, scored with the eval code.

Every process runs its share of the episodes (``episodes[rank::world]``) with the current
adapters; rank 0 scores the gathered rows with the benchmark metric (class-wise mIoU).
"""

from __future__ import annotations

from sansa_cli.core import distributed
from sansa_cli.train.config import TrainConfig


class Validator:
    """Scores the adapted model on a fixed list of the fold's evaluation episodes."""

    def __init__(self, config: TrainConfig, rank: int, world: int):
        from sansa_cli import registry

        cls = registry.load("dataset", config.dataset)
        options = cls.options_for_shot(config.dataset_options, config.val_shot)
        self.dataset = cls.create(config.data_root, config.fold, cls.eval_split, **options)
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
        return score("adapted", self.config.fold, self.config.val_shot, self.dataset.classes,
                     merged).miou
