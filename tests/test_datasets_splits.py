"""The real HSNet split files (``../shared/data/hsnet-splits``), read by the benchmark plugins."""

from __future__ import annotations

import pytest

from sansa_cli.datasets.coco20i import Coco20i
from sansa_cli.datasets.fss1000 import Fss1000
from sansa_cli.datasets.pascal5i import Pascal5i
from tests.datasets_fixtures import SHARED_SPLITS

pytestmark = pytest.mark.skipif(
    not SHARED_SPLITS.is_dir(),
    reason=f"real HSNet split files not found at {SHARED_SPLITS} (the shared folder next to the "
    "repo)",
)


@pytest.mark.parametrize("fold,unique_images", [(0, 26052), (1, 15305), (2, 13138), (3, 12640)])
def test_coco20i_folds_are_interleaved_with_hsnet_image_counts(tmp_path, fold, unique_images):
    val = Coco20i(tmp_path, fold, "val", splits=SHARED_SPLITS)  # indexing opens no image
    assert val.classes == [fold + 4 * v for v in range(20)]
    assert len(val.image_ids()) == unique_images
    train = Coco20i(tmp_path, fold, "train", splits=SHARED_SPLITS / "coco")
    assert train.classes == sorted(set(range(80)) - set(val.classes))
    assert all(i.startswith("train2014/") for i in train.images(train.classes[0]))


def test_coco20i_episodes_on_real_splits(tmp_path):
    dataset = Coco20i(tmp_path, 0, "val", splits=SHARED_SPLITS)
    episodes = dataset.episodes(5, seed=0)
    assert len(episodes) == 1000
    assert episodes == Coco20i(tmp_path, 0, "val", splits=SHARED_SPLITS).episodes(5, seed=0)
    assert all(e.target not in e.references for e in episodes)
    assert len({e.class_id for e in episodes}) == 20  # uniform over the fold's 20 classes


def test_fss1000_test_split_has_240_classes_despite_crlf(tmp_path):
    names = (SHARED_SPLITS / "fss" / "test.txt").read_bytes()
    assert b"\r\n" in names  # the property this test is about
    for name in names.decode().split():
        (tmp_path / "data" / name).mkdir(parents=True)
    test = Fss1000(tmp_path, 0, "test", splits=SHARED_SPLITS)
    assert len(test.classes) == 240
    assert all("\r" not in test.class_name(c) for c in test.classes)
    assert test.classes[0] == 520 + 240  # ids continue after trn and val


@pytest.mark.parametrize("fold,lines", [(0, 346), (1, 451), (2, 725), (3, 346)])
def test_pascal5i_val_folds_are_consecutive_blocks(tmp_path, fold, lines):
    dataset = Pascal5i(tmp_path, fold, "val", splits=SHARED_SPLITS)
    assert dataset.classes == list(range(5 * fold, 5 * fold + 5))
    assert len(dataset.pairs) == lines
    episodes = dataset.episodes(1)
    assert len(episodes) == 1000
    assert [(e.target, e.class_id) for e in episodes[:lines]] == dataset.pairs  # cycles in order
    train = Pascal5i(tmp_path, fold, "train", splits=SHARED_SPLITS)
    assert set(train.classes) == set(range(20)) - set(dataset.classes)
