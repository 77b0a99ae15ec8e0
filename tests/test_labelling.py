"""Several classes at once: the same masks as one class at a time, instances, scores."""

from __future__ import annotations

import numpy as np
import pytest

from sansa_cli.core.components import connected_components
from tests.conftest import TINY_YAML, blob_image, blob_mask


@pytest.fixture()
def model(tiny_checkpoint):
    from sansa_cli import load_model

    return load_model(sam2=str(TINY_YAML), sam2_checkpoint=tiny_checkpoint, adapters="none",
                      device="cpu")


@pytest.fixture()
def classes(scene, tmp_path):
    (r0, m0), (r1, m1), (r2, m2) = scene["refs"]
    other = blob_image(tmp_path / "other.png", (80, 80), seed=7, center=(20, 60))
    other_mask = blob_mask(tmp_path / "other_mask.png", (80, 80), center=(20, 60))
    return [("disc", [(r0, m0), (r1, m1)]), ("corner", [(other, other_mask)]),
            ("again", [(r2, m2)])]


def test_each_class_gets_the_mask_it_gets_alone(model, classes, scene):
    together = list(model.label(classes, scene["targets"]))
    assert len(together) == len(scene["targets"])
    for c, (name, refs) in enumerate(classes):
        alone = model.predict(refs, scene["targets"])
        for result, single in zip(together, alone):
            cls = result.classes[c]
            assert cls.name == name
            differ = cls.mask != single.mask
            assert differ.mean() < 1e-3  # batched matmuls may flip pixels whose logit is ~0
            assert cls.predicted_iou == pytest.approx(single.predicted_iou, abs=1e-4)
            assert cls.object_score == pytest.approx(single.object_score, abs=1e-4)


def test_instances_scores_and_the_semantic_map(model, classes, scene):
    result = next(iter(model.label(classes, scene["targets"][:1])))
    for c, cls in enumerate(result.classes):
        union = np.zeros_like(cls.mask)
        for inst in cls.instances:
            assert 0.0 <= inst.score <= 1.0
            assert (connected_components(inst.mask)[1]) == 1
            union |= inst.mask
        assert (union == cls.mask).all()  # no threshold: the instances are the whole mask
        assert ((result.semantic == c + 1) <= union).all()
    assert ((result.semantic > 0) == np.any([c.mask for c in result.classes], axis=0)).all()


def test_min_area_and_min_score_remove_instances(model, classes, scene):
    everything = next(iter(model.label(classes, scene["targets"][:1])))
    scores = sorted(i.score for c in everything.classes for i in c.instances)
    areas = sorted(i.area for c in everything.classes for i in c.instances)
    assert len(scores) >= 2
    cut = (scores[0] + scores[-1]) / 2
    high = next(iter(model.label(classes, scene["targets"][:1], min_score=cut)))
    kept = [i.score for c in high.classes for i in c.instances]
    assert kept and all(s >= cut for s in kept) and len(kept) < len(scores)
    big = next(iter(model.label(classes, scene["targets"][:1], min_area=areas[-1])))
    assert all(i.area >= areas[-1] for c in big.classes for i in c.instances)
    for cls, full in zip(big.classes, everything.classes):
        union = np.any([i.mask for i in cls.instances], axis=0) if cls.instances else \
            np.zeros_like(cls.mask)
        kept_parts = [i.mask for i in full.instances if i.area >= areas[-1]]
        expected = np.any(kept_parts, axis=0) if kept_parts else np.zeros_like(cls.mask)
        assert (union == expected).all()  # the union equals the class mask above min_area
    nothing = next(iter(model.label(classes, scene["targets"][:1], min_score=1.01)))
    assert not any(c.instances for c in nothing.classes) and not nothing.semantic.any()
