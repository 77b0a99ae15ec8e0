"""A reference as the model takes it: an image and what marks the object in it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from sansa_cli.core.images import ImageLike, load_image, reference_pair
from sansa_cli.core.prompts import Prompt, coords_and_labels, is_prompt


@dataclass
class Reference:
    """A loaded, checked reference: ``mask`` for mask references, ``prompt`` otherwise."""

    image: Image.Image
    mask: np.ndarray | None = None
    prompt: Prompt | None = None


def load_reference(image: ImageLike, marking) -> Reference:
    """Load and check one reference; ``marking`` is a mask (path, PIL, array) or a prompt
    (:class:`~sansa_cli.core.prompts.Points`, ``Box``, ``Scribble``)."""
    if is_prompt(marking):
        img = load_image(image)
        coords_and_labels(marking, img.width, img.height)  # raises on a bad prompt
        return Reference(img, None, marking)
    img, mask = reference_pair(image, marking)
    return Reference(img, mask, None)
