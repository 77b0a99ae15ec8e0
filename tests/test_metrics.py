"""The lineage metric on hand-computed examples, and exact merging of shards."""

from __future__ import annotations

import numpy as np
import pytest

from sansa_cli.core import distributed
from sansa_cli.evaluation.metrics import ClassSums, EpisodeCounts, episode_counts


def test_episode_counts_by_hand_with_ignore_pixels():
    pred = np.array([[1, 1, 0], [0, 1, 0]], bool)
    gt = np.array([[1, 0, 0], [1, 255, 0]], np.uint8)
    # valid pixels: 5 (the 255 is left out even though the prediction covers it)
    # fg: P = {(0,0), (0,1)}, G = {(0,0), (1,0)} -> inter 1, union 3
    # bg: not P = {(0,2), (1,0), (1,2)}, not G = {(0,1), (0,2), (1,2)} -> inter 2, union 4
    assert episode_counts(pred, gt) == EpisodeCounts(1, 3, 2, 4)
    assert episode_counts(pred, gt).iou == pytest.approx(1 / 3)


def test_empty_prediction_and_truth_score_zero_without_dividing_by_zero():
    counts = episode_counts(np.zeros((2, 2), bool), np.zeros((2, 2), np.uint8))
    assert counts == EpisodeCounts(0, 0, 4, 4) and counts.iou == 0.0


def test_class_iou_is_a_ratio_of_sums_and_unsampled_classes_count_zero():
    sums = ClassSums()
    sums.add(1, EpisodeCounts(1, 3, 5, 7))  # episode IoU 0.33
    sums.add(1, EpisodeCounts(2, 2, 6, 6))  # episode IoU 1.0
    sums.add(2, EpisodeCounts(0, 4, 4, 8))
    assert sums.class_iou(1) == pytest.approx(3 / 5)  # not the mean of episode IoUs (0.67)
    assert sums.class_iou(2) == 0.0 and sums.class_iou(3) == 0.0
    assert sums.miou([1, 2, 3]) == pytest.approx((0.6 + 0 + 0) / 3)
    assert sums.miou([1, 2]) == pytest.approx(0.3)
    # FB-IoU pools the fold: fg 3 / 9, bg (5 + 6 + 4) / (7 + 6 + 8)
    assert sums.fb_iou([1, 2, 3]) == pytest.approx((3 / 9 + 15 / 21) / 2)
    assert sums.episodes == 3


def test_sums_of_a_class_outside_the_fold_are_refused():
    sums = ClassSums.from_episodes([(9, EpisodeCounts(1, 1, 1, 1))])
    with pytest.raises(ValueError, match="outside"):
        sums.to_array([1, 2])


def test_shards_merge_exactly_into_the_whole():
    rng = np.random.default_rng(0)
    classes = [0, 4, 8, 12]
    episodes = [(int(rng.choice(classes[:3])),
                 episode_counts(rng.random((9, 7)) > 0.5,
                                rng.integers(0, 2, (9, 7)).astype(np.uint8)))
                for _ in range(25)]
    whole = ClassSums.from_episodes(episodes)
    shards = [ClassSums.from_episodes(episodes[r::3]) for r in range(3)]
    merged = shards[0].merge(shards[1]).merge(shards[2])
    np.testing.assert_array_equal(merged.to_array(classes), whole.to_array(classes))
    # the dense form an all-reduce adds up gives the same sums back
    dense = sum(s.to_array(classes) for s in shards)
    again = ClassSums.from_array(classes, dense)
    assert again.miou(classes) == whole.miou(classes)
    assert again.fb_iou(classes) == whole.fb_iou(classes)
    assert 12 not in again.rows  # never sampled: no row, scores 0


def test_all_reduce_in_a_single_process_is_the_identity(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    sums = {"counts": np.array([[1, 2], [3, 4]], np.int64), "seconds": np.array([0.5])}
    out = distributed.all_reduce_sums(sums)
    assert out["counts"].dtype == np.int64 and out["seconds"].dtype == np.float64
    np.testing.assert_array_equal(out["counts"], sums["counts"])
    assert distributed.gather_to_main("x") == ["x"] and distributed.is_main()
    assert distributed.broadcast_from_main("x") == "x"
    distributed.barrier()  # no group: returns at once
    distributed.teardown()  # no group: nothing to leave
