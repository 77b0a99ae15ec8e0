"""Training episodes as tensors: which episodes an epoch holds, and loading them.

The episodes of epoch ``e`` come from one ``random.Random`` seeded by (seed, e), so they do not
depend on workers or process count. Global step ``s`` uses episodes ``[k*G, (k+1)*G)`` of its epoch
(``k = s mod steps_per_epoch``, ``G`` the global batch); process ``r`` of ``W`` takes the ``r``-th
slice of ``G / W`` of them.
"""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from sansa_cli.core.images import mask_to_input, preprocess
from sansa_cli.core.input_profile import InputProfile
from sansa_cli.core.prompts import MAX_SCRIBBLE_POINTS, point_inputs

MAX_PROMPT_POINTS = MAX_SCRIBBLE_POINTS + 2  # room for any sampled prompt (a box takes 2)


def epoch_episodes(dataset, seed: int, epoch: int, count: int, seq_len: int) -> list:
    """The ``count`` training episodes of ``epoch``."""
    rng = random.Random(f"sansa-train:{seed}:{epoch}")
    return [dataset.training_episode(rng, seq_len) for _ in range(count)]


def rank_indices(first_step: int, steps_per_epoch: int, global_batch: int, rank: int,
                 world: int) -> list[int]:
    """Indices of this process's episodes for steps ``first_step..`` of one epoch, in order."""
    per_rank = global_batch // world
    return [k * global_batch + rank * per_rank + i
            for k in range(first_step, steps_per_epoch) for i in range(per_rank)]


class EpisodeTensors(torch.utils.data.Dataset):
    """Item ``i`` of ``indices``: the episode's images, reference mask and target masks, fed
    as ``profile`` says (the profile the exported adapter file records)."""

    def __init__(self, dataset, episodes: list, indices: list[int], image_size: int,
                 profile: InputProfile, augment: bool, seed: int, epoch: int,
                 prompt: str = "mask"):
        self.dataset, self.episodes, self.indices = dataset, episodes, indices
        self.image_size, self.profile, self.augment = image_size, profile, augment
        self.key = f"{seed}:{epoch}"
        self.seed, self.epoch, self.prompt = seed, epoch, prompt

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> dict:
        index = self.indices[item]
        episode = self.episodes[index]
        flips = random.Random(f"sansa-augment:{self.key}:{index}")
        images, labels = [], []
        for image_id in (episode.reference, *episode.targets):
            image = self.dataset.load_image(image_id)
            label = self.dataset.load_mask(image_id, episode.class_id)
            if self.augment and flips.random() < 0.5:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                label = label[:, ::-1].copy()
            images.append(preprocess(image, self.image_size, self.profile.resize))
            labels.append(label)
        # The reference mask is shrunk from its own size exactly as inference does it; target
        # labels keep their values (nearest neighbour) for the loss.
        reference = labels[0] == 1
        targets = torch.stack([self._resize_labels(label) for label in labels[1:]])
        item = {"images": torch.stack(images),
                "reference_mask": mask_to_input(reference, self.image_size,
                                                self.profile.mask_rule),
                "target": (targets == 1).float(), "valid": (targets != 255).float()}
        if self.prompt != "mask":
            item.update(self._prompt(reference, index))
        return item

    def _prompt(self, mask: np.ndarray, index: int) -> dict:
        """The reference's prompt as fixed-size tensors (count 0 = use the mask)."""
        from sansa_cli.core.prompt_sampling import sample_prompt

        coords = torch.zeros(MAX_PROMPT_POINTS, 2)
        labels = torch.full((MAX_PROMPT_POINTS,), -1, dtype=torch.int32)
        marking = sample_prompt(self.prompt, mask, self.seed * 1_000_003 + self.epoch, index, 0)
        count = 0
        if not isinstance(marking, np.ndarray):
            points = point_inputs(marking, mask.shape[1], mask.shape[0], self.image_size)
            count = points["point_labels"].shape[1]
            coords[:count] = points["point_coords"][0]
            labels[:count] = points["point_labels"][0]
        return {"prompt_coords": coords, "prompt_labels": labels,
                "prompt_count": torch.tensor(count)}

    def _resize_labels(self, label: np.ndarray) -> torch.Tensor:
        """Labels (0/1/255) at the model's size, nearest neighbour so no new values appear."""
        tensor = torch.from_numpy(np.ascontiguousarray(label)).float()[None, None]
        return F.interpolate(tensor, size=(self.image_size, self.image_size), mode="nearest")[0, 0]
