"""Dataset plugins (COCO-20i, LVIS-92i, FSS-1000, Pascal-5i, user folders), episodes and
`sansa prepare`."""

from sansa_cli.datasets.base import BuildResult, Episode, FewShotDataset, TrainingEpisode
from sansa_cli.datasets.episode_list import (
    EpisodeList,
    read_episode_list,
    write_episode_list,
)

__all__ = [
    "BuildResult",
    "Episode",
    "EpisodeList",
    "FewShotDataset",
    "TrainingEpisode",
    "read_episode_list",
    "write_episode_list",
]
