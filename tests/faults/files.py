"""Files from others are data: loading them never runs code, and bad content is refused.

Crafted split and annotation pickles, adapter metadata that would steer Hydra, adapter files for
another architecture, a checkpoint changed under the hash cache, NaN and infinite weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import time
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sansa_cli.artifacts.adapter_file import (
    AdapterInfo, attach_adapters, read_adapter_info, save_adapter_file,
)
from sansa_cli.artifacts.hashing import cache_dir, hash_cache_dir, sha256_file
from sansa_cli.artifacts.official import convert_official
from sansa_cli.artifacts.safe_pickle import load_data_pickle
from sansa_cli.artifacts.train_checkpoint import export_training_checkpoint
from sansa_cli.core.sam2_base import architecture_fingerprint, load_checkpoint
from sansa_cli.errors import AdapterFileError, CheckpointError, DatasetError
from tests.adapters_fixtures import (
    TINY, TINY_DIMS, TINY_STAGE_BLOCKS, adapted, official_state, write_official,
    write_training_checkpoint,
)
from tests.cli_helpers import assert_one_line_error, run_sansa
from tests.conftest import TINY_YAML, build_tiny
from tests.datasets_fixtures import SHARED_SPLITS


def one_line(exc_type, fn, *args, **kwargs) -> str:
    with pytest.raises(exc_type) as err:
        fn(*args, **kwargs)
    message = str(err.value)
    assert message and "\n" not in message, message
    return message


# -- pickles that would run code -------------------------------------------------------------------
class Payload:
    """Unpickling this writes ``marker`` (through ``exec`` or ``open``): code run by a file."""

    def __init__(self, marker: Path, how: str):
        self.marker, self.how = str(marker), how

    def __reduce__(self):
        if self.how == "exec":
            return exec, (f"open({self.marker!r}, 'w').write('ran')",)
        return open, (self.marker, "w")


HOW = {"exec": "builtins.exec", "open": f"{open.__module__}.open"}


def evil_split(marker: Path, how: str) -> dict:
    return {0: ["val2014/a.jpg", Payload(marker, how)], 4: ["val2014/b.jpg"]}


def evil_lvis(marker: Path, how: str) -> dict:
    return {1: {"val2017/000000000100.jpg": {"annotations": [
        {"segmentation": {"size": [2, 2], "counts": Payload(marker, how)}}]}}}


def write_evil_splits(root: Path, marker: Path, how: str) -> Path:
    for split in ("trn", "val"):
        for fold in range(4):
            path = root / "splits" / split / f"fold{fold}.pkl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pickle.dumps(evil_split(marker, how)))
    return root / "splits"


def write_evil_lvis(root: Path, marker: Path, how: str) -> Path:
    folder = root / "lvis"
    folder.mkdir(parents=True)
    for split in ("train", "val"):
        (folder / f"lvis_{split}.pkl").write_bytes(pickle.dumps(evil_lvis(marker, how)))
    return folder


@pytest.mark.parametrize("how", sorted(HOW))
def test_the_payload_runs_under_plain_pickle(tmp_path, how):
    """The fixtures are real attacks: plain ``pickle.loads`` writes the marker."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(evil_split(marker, how)))
    assert marker.exists()


@pytest.mark.parametrize("how", sorted(HOW))
@pytest.mark.parametrize("dataset", ["coco20i", "lvis92i"])
def test_crafted_pickles_are_refused_through_the_api(tmp_path, dataset, how):
    from sansa_cli.datasets.coco20i import Coco20i
    from sansa_cli.datasets.lvis92i import Lvis92i

    marker = tmp_path / "ran"
    if dataset == "coco20i":
        splits = write_evil_splits(tmp_path / "coco", marker, how)
        path = splits / "val" / "fold0.pkl"
        message = one_line(DatasetError, Coco20i, tmp_path / "coco", 0, "val", splits=splits)
    else:
        folder = write_evil_lvis(tmp_path / "coco2017", marker, how)
        path = folder / "lvis_val.pkl"
        message = one_line(DatasetError, Lvis92i, tmp_path / "coco2017", 0,
                           annotations=folder)
    assert str(path) in message and HOW[how] in message
    assert not marker.exists()


@pytest.mark.parametrize("dataset", ["coco20i", "lvis92i"])
def test_crafted_pickles_are_refused_by_sansa_prepare(tmp_path, dataset, capsys, monkeypatch):
    marker = tmp_path / "ran"
    if dataset == "coco20i":
        splits = write_evil_splits(tmp_path / "coco", marker, "exec")
        args = ["--data-root", tmp_path / "coco", "--splits", splits]
    else:
        folder = write_evil_lvis(tmp_path / "coco2017", marker, "exec")
        args = ["--data-root", tmp_path / "coco2017", "--dataset-option", f"annotations={folder}"]
    code, _, err = run_sansa(["prepare", dataset, *args], capsys, monkeypatch)
    assert_one_line_error(code, err, "builtins.exec", "could run code")
    assert not marker.exists()


@pytest.mark.skipif(not SHARED_SPLITS.is_dir(), reason=f"no HSNet split files at {SHARED_SPLITS}")
@pytest.mark.parametrize("name", [f"{s}/fold{f}.pkl" for s in ("trn", "val") for f in range(4)])
def test_real_hsnet_split_files_load_as_plain_pickle_does(name):
    path = SHARED_SPLITS / "coco" / name
    with path.open("rb") as f:
        expected = pickle.load(f)
    assert load_data_pickle(path, "split file") == expected


@pytest.mark.parametrize("protocol", [0, 2, 4, pickle.HIGHEST_PROTOCOL])
def test_matcher_style_tables_load_in_every_protocol(tmp_path, protocol):
    """RLE counts as str or bytes (protocol 2 writes bytes through ``_codecs.encode``), floats,
    nested dicts, and the containers older pickles use."""
    table = {3: {"val2017/000000000100.jpg": {"annotations": [
        {"segmentation": {"size": [20, 24], "counts": b"Pb01\x00\xff"}, "area": 12.5},
        {"segmentation": {"size": [20, 24], "counts": "Pb01"}, "bbox": [1.0, 2, 3, 4]},
        {"segmentation": [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], "iscrowd": 0, "ok": True,
         "none": None, "pair": (1, 2), "tags": {"a", "b"}, "frozen": frozenset({1}),
         "ordered": OrderedDict(a=1), "raw": bytearray(b"xy"), "z": 1 + 2j}]}}}
    path = tmp_path / "lvis_val.pkl"
    path.write_bytes(pickle.dumps(table, protocol=protocol))
    assert load_data_pickle(path, "LVIS annotation file") == pickle.loads(path.read_bytes())


def test_codecs_other_than_latin1_are_refused(tmp_path):
    path = tmp_path / "x.pkl"
    # protocol 2 bytes, with the codec swapped for another one
    path.write_bytes(pickle.dumps({"counts": b"ab"}, protocol=2).replace(b"latin1", b"utf_16"))
    assert "utf_16" in one_line(DatasetError, load_data_pickle, path, "LVIS annotation file")


# -- adapter metadata is data ----------------------------------------------------------------------
def tiny_adapter(tmp_path, **info_changes) -> Path:
    _, strategy, trainable = adapted()
    info = AdapterInfo("adaptformer", dataclasses.asdict(strategy.config), TINY,
                       **info_changes)
    return save_adapter_file(tmp_path / "a.safetensors", trainable, info)


def with_metadata(path: Path, **changes: str) -> Path:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
    save_file(load_file(str(path)), str(path), metadata={**meta, **changes})
    return path


def marker_override(marker: Path) -> str:
    """Overrides that make Hydra call ``os.mkdir(marker)`` while building SAM2."""
    return json.dumps({"model.marker": {"_target_": "os.mkdir", "path": str(marker)}})


BAD_OVERRIDES = {  # case -> (raw JSON of base_overrides, the key the error names)
    "target": ('{"_target_": "os.system"}', "'_target_'"),
    "nested target": ('{"model.image_encoder._target_": "builtins.exec"}',
                      "'model.image_encoder._target_'"),
    "unknown key": ('{"model.image_encoder.trunk.embed_dim": 8}',
                    "'model.image_encoder.trunk.embed_dim'"),
    "string for a bool": ('{"model.pred_obj_scores": "false"}', "model.pred_obj_scores to 'false'"),
    "bool for a number": (
        '{"model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta": true}',
        "dynamic_multimask_stability_delta to True"),
    "NaN": ('{"model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh": NaN}',
            "dynamic_multimask_stability_thresh to nan"),
    "interpolation": ('{"model.fixed_no_obj_ptr": "${oc.env:HOME}"}', "model.fixed_no_obj_ptr"),
}


def test_the_marker_override_runs_code_when_instantiated(tmp_path):
    """What the check prevents: Hydra calls whatever ``_target_`` a setting names."""
    from sansa_cli.core.sam2_base import build_sam2, resolve_base
    from sansa_cli.errors import UserInputError

    marker = tmp_path / "ran"
    with pytest.raises(UserInputError):
        build_sam2(resolve_base(TINY, json.loads(marker_override(marker))))
    assert marker.exists()


@pytest.mark.parametrize("case", sorted(BAD_OVERRIDES))
def test_adapter_metadata_outside_the_allow_list_is_refused(tmp_path, case, monkeypatch):
    import sansa_cli.core.sam2_base as sam2_base
    from sansa_cli.core.assemble import build_model

    raw, key = BAD_OVERRIDES[case]
    path = with_metadata(tiny_adapter(tmp_path), base_overrides=raw)
    built = []
    monkeypatch.setattr(sam2_base, "build_sam2", lambda *a, **k: built.append(a))
    message = one_line(AdapterFileError, read_adapter_info, path)
    assert str(path) in message and key in message
    assert key in one_line(AdapterFileError, build_model, adapters=path, weights=False)
    assert not built


def test_hydra_payload_in_an_adapter_file_never_runs(tmp_path, tiny_checkpoint, capsys,
                                                     monkeypatch):
    marker = tmp_path / "ran"
    path = with_metadata(tiny_adapter(tmp_path), base_overrides=marker_override(marker))
    code, _, err = run_sansa(["export-adapters", "--info", path], capsys, monkeypatch)
    assert_one_line_error(code, err, str(path), "'model.marker'")
    from sansa_cli import load_model

    one_line(AdapterFileError, load_model, sam2=None, adapters=path,
             sam2_checkpoint=tiny_checkpoint, device="cpu")
    assert not marker.exists()


@pytest.mark.parametrize("case", ["target", "unknown key", "string for a bool"])
def test_training_checkpoint_overrides_outside_the_allow_list_are_refused(tmp_path, case):
    raw, key = BAD_OVERRIDES[case]
    _, _, trainable = adapted()
    write_training_checkpoint(tmp_path / "run", "adaptformer", {"bottleneck": 0.3}, trainable,
                              base_overrides=json.loads(raw))
    message = one_line(AdapterFileError, export_training_checkpoint, tmp_path / "run",
                       tmp_path / "a.safetensors")
    assert "latest.pt" in message and key in message
    assert not (tmp_path / "a.safetensors").exists()


def test_the_settings_sansa_writes_are_allowed(tmp_path):
    from sansa_cli.artifacts.official import RELEASE_OVERRIDES
    from sansa_cli.core.sam2_base import RELEASE_SETTINGS, VIDEO_PREDICTOR_SETTINGS

    for overrides in (RELEASE_OVERRIDES, RELEASE_SETTINGS, VIDEO_PREDICTOR_SETTINGS,
                      {"model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta": 1}):
        path = tiny_adapter(tmp_path, base_overrides=dict(overrides))
        assert read_adapter_info(path).base_overrides == overrides


# -- the base check: architecture, whatever --sam2 was ---------------------------------------------
def other_yaml(tmp_path) -> Path:
    """The tiny SAM2 with a second memory-attention layer: every adapter tensor still fits."""
    text = TINY_YAML.read_text().replace("    num_layers: 1\n  memory_encoder:",
                                         "    num_layers: 2\n  memory_encoder:")
    assert "num_layers: 2" in text
    path = tmp_path / "tiny_two_layers.yaml"
    path.write_text(text)
    return path


def exported(tmp_path, base_model: str = TINY) -> Path:
    _, _, trainable = adapted()
    write_training_checkpoint(tmp_path / "run", "adaptformer", {"bottleneck": 0.3}, trainable,
                              base_model=base_model)
    return export_training_checkpoint(tmp_path / "run", tmp_path / "a.safetensors")


@pytest.mark.parametrize("how", ["export", "official", "merge"])
def test_every_written_file_records_the_base_architecture(tmp_path, how, monkeypatch):
    if how == "export":
        path = exported(tmp_path)
        expected = architecture_fingerprint(build_tiny())
    elif how == "official":
        src = write_official(tmp_path / "x.pth", official_state(TINY_DIMS, TINY_STAGE_BLOCKS, 0.3))
        path = convert_official(src, tmp_path / "a.safetensors", base_model=TINY)
        expected = architecture_fingerprint(build_tiny(overrides=read_adapter_info(path)
                                                       .base_overrides))
    else:
        monkeypatch.setenv("SANSA_CACHE", str(tmp_path / "cache"))
        base = tmp_path / "base.pt"
        torch.save({"model": build_tiny().state_dict()}, base)
        _, _, trainable = adapted("lora", {"rank": 2})
        write_training_checkpoint(tmp_path / "run", "lora", {"rank": 2}, trainable)
        path = export_training_checkpoint(tmp_path / "run", tmp_path / "m.safetensors",
                                          merge=True, sam2_checkpoint=base)
        expected = architecture_fingerprint(build_tiny())
    assert read_adapter_info(path).base_fingerprint == expected
    attach_adapters(build_tiny(overrides=read_adapter_info(path).base_overrides), path,
                    read_adapter_info(path), None)


def test_file_for_another_architecture_is_refused_with_a_yaml(tmp_path):
    from sansa_cli.core.assemble import build_model

    path = exported(tmp_path)
    other = other_yaml(tmp_path)
    for allow in (False, True):  # another architecture is never a tolerated mismatch
        message = one_line(AdapterFileError, build_model, str(other), weights=False,
                           adapters=path, allow_base_mismatch=allow)
        assert "architecture differs" in message and str(path) in message
        assert read_adapter_info(path).base_fingerprint[:12] in message
    build_model(str(TINY_YAML), weights=False, adapters=path)  # its own base still loads


def test_file_for_another_architecture_is_refused_by_predict(tmp_path, scene, capsys,
                                                             monkeypatch):
    from sansa_cli.core.sam2_base import build_sam2, resolve_base

    path = exported(tmp_path)
    other = other_yaml(tmp_path)
    checkpoint = tmp_path / "other.pt"
    torch.save({"model": build_sam2(resolve_base(str(other))).state_dict()}, checkpoint)
    (ref, mask), target = scene["refs"][0], scene["targets"][0]
    code, _, err = run_sansa(["predict", ref, mask, target, "--out", tmp_path / "out",
                              "--adapters", path, "--sam2", other, "--sam2-checkpoint",
                              checkpoint, "--device", "cpu"], capsys, monkeypatch)
    assert_one_line_error(code, err, "architecture differs", "fingerprint")
    assert not list(tmp_path.glob("out/*.png"))


def test_a_file_never_picks_the_sam2_config_to_build(tmp_path, scene, tiny_checkpoint, capsys,
                                                     monkeypatch):
    """A YAML names classes to instantiate: a file that names one as its base is built only
    when the user names that YAML too."""
    from sansa_cli import load_model
    from sansa_cli.errors import UserInputError

    path = exported(tmp_path)  # made on the tiny YAML
    message = one_line(UserInputError, load_model, sam2_checkpoint=tiny_checkpoint,
                       adapters=path, device="cpu")
    assert str(TINY_YAML) in message and "--sam2" in message
    (ref, mask), target = scene["refs"][0], scene["targets"][0]
    args = ["predict", ref, mask, target, "--out", tmp_path / "out", "--adapters", path,
            "--sam2-checkpoint", tiny_checkpoint, "--device", "cpu"]
    code, _, err = run_sansa(args, capsys, monkeypatch)
    assert_one_line_error(code, err, "pass --sam2 with that file")
    code, _, err = run_sansa([*args, "--sam2", TINY_YAML], capsys, monkeypatch)
    assert code == 0, err


def test_files_without_a_fingerprint_keep_todays_checks(tmp_path):
    from sansa_cli.core.assemble import build_model

    path = tiny_adapter(tmp_path)  # as older sansa wrote them
    assert read_adapter_info(path).base_fingerprint == ""
    built = build_model(str(other_yaml(tmp_path)), weights=False, adapters=path)
    assert built.strategy.name == "adaptformer"


def test_the_checkpoint_hash_is_still_compared(tmp_path, monkeypatch):
    monkeypatch.setenv("SANSA_CACHE", str(tmp_path / "cache"))
    base = tmp_path / "base.pt"
    base.write_bytes(b"another checkpoint")
    path = tiny_adapter(tmp_path, base_checkpoint_sha256="0" * 64,
                        base_fingerprint=architecture_fingerprint(build_tiny()))
    info = read_adapter_info(path)
    message = one_line(AdapterFileError, attach_adapters, build_tiny(), path, info, base)
    assert "000000000000" in message and "--allow-base-mismatch" in message
    attach_adapters(build_tiny(), path, info, base, allow_base_mismatch=True)


def test_damaged_fingerprint_is_damaged_metadata(tmp_path):
    path = with_metadata(tiny_adapter(tmp_path), base_fingerprint="not a hash")
    assert "damaged metadata" in one_line(AdapterFileError, read_adapter_info, path)


# -- the hash cache --------------------------------------------------------------------------------
@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SANSA_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_hash_cache_lives_in_the_cache_dir_and_nothing_next_to_the_file(tmp_path, cache):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    checkpoint = folder / "base.pt"
    checkpoint.write_bytes(b"weights" * 1000)
    expected = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert sha256_file(checkpoint) == expected
    assert sorted(p.name for p in folder.iterdir()) == ["base.pt"]
    entries = list(hash_cache_dir().iterdir())
    assert len(entries) == 1 and hash_cache_dir().parent == cache
    assert json.loads(entries[0].read_text())["sha256"] == expected
    assert sha256_file(checkpoint) == expected  # from the cache


def test_hash_cache_notices_a_file_replaced_with_the_same_size_and_mtime(tmp_path, cache):
    checkpoint = tmp_path / "base.pt"
    checkpoint.write_bytes(b"a" * 4096)
    before = checkpoint.stat()
    first = sha256_file(checkpoint)
    replacement = tmp_path / "new.pt"
    replacement.write_bytes(b"b" * 4096)
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, checkpoint)
    after = checkpoint.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert after.st_ino != before.st_ino
    assert sha256_file(checkpoint) == hashlib.sha256(b"b" * 4096).hexdigest() != first


def test_hash_cache_notices_a_file_rewritten_in_place(tmp_path, cache):
    checkpoint = tmp_path / "base.pt"
    checkpoint.write_bytes(b"a" * 4096)
    before = checkpoint.stat()
    sha256_file(checkpoint)
    time.sleep(0.05)  # past the filesystem's timestamp tick, so the status-change time moves
    with checkpoint.open("r+b") as f:  # same inode, same size
        f.write(b"b")
    os.utime(checkpoint, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert sha256_file(checkpoint) == hashlib.sha256(checkpoint.read_bytes()).hexdigest()


@pytest.mark.parametrize("damage", ["garbage", "wrong shape", "bad hash", "folder"])
def test_corrupt_or_unreadable_cache_entries_are_ignored(tmp_path, cache, damage):
    checkpoint = tmp_path / "base.pt"
    checkpoint.write_bytes(b"weights")
    expected = sha256_file(checkpoint)
    (entry,) = hash_cache_dir().iterdir()
    stamp = {k: v for k, v in json.loads(entry.read_text()).items() if k != "sha256"}
    entry.unlink()
    if damage == "folder":
        entry.mkdir()
    else:
        entry.write_text({"garbage": "\x00{not json", "wrong shape": "[1, 2]",
                          "bad hash": json.dumps({**stamp, "sha256": "../" * 20})}[damage])
    assert sha256_file(checkpoint) == expected


def test_cache_dir_follows_sansa_cache_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SANSA_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("SANSA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "sansa"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "sansa"


# -- NaN and infinite weights ----------------------------------------------------------------------
BAD_VALUES = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def spoil(tensors: dict, key: str, value: float) -> dict:
    tensors = {k: v.detach().clone() for k, v in tensors.items()}
    tensors[key].view(-1)[1] = value
    return tensors


def bad_adapter_file(tmp_path, value):
    _, strategy, trainable = adapted()
    key = sorted(trainable)[3]
    info = AdapterInfo("adaptformer", dataclasses.asdict(strategy.config), TINY)
    path = save_adapter_file(tmp_path / "a.safetensors", spoil(trainable, key, value), info)
    return AdapterFileError, key, path, lambda: attach_adapters(build_tiny(), path, info, None)


def bad_training_checkpoint(tmp_path, value):
    _, _, trainable = adapted()
    key = sorted(trainable)[3]
    path = write_training_checkpoint(tmp_path / "run", "adaptformer", {"bottleneck": 0.3},
                                     spoil(trainable, key, value))
    return AdapterFileError, key, path, lambda: export_training_checkpoint(
        tmp_path / "run", tmp_path / "out.safetensors")


def bad_official(tmp_path, value):
    state = official_state(TINY_DIMS, TINY_STAGE_BLOCKS, 0.3)
    key = sorted(state)[5]
    path = write_official(tmp_path / "x.pth", spoil(state, key, value))
    return AdapterFileError, key, path, lambda: convert_official(
        path, tmp_path / "out.safetensors", base_model=TINY)


def bad_sam2_checkpoint(tmp_path, value):
    state = build_tiny().state_dict()
    key = "image_encoder.trunk.blocks.2.mlp.layers.0.weight"
    path = tmp_path / "tiny.pt"
    torch.save({"model": spoil(state, key, value)}, path)
    return CheckpointError, key, path, lambda: load_checkpoint(build_tiny(), path)


@pytest.mark.parametrize("value", sorted(BAD_VALUES))
@pytest.mark.parametrize("make", [bad_adapter_file, bad_training_checkpoint, bad_official,
                                  bad_sam2_checkpoint], ids=lambda f: f.__name__[4:])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, make, value):
    error, key, path, load = make(tmp_path, BAD_VALUES[value])
    message = one_line(error, load)
    assert str(path) in message and f"tensor {key})" in message and "NaN or infinite" in message
    assert not (tmp_path / "out.safetensors").exists()


# -- torch files that would run code ---------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sam2 checkpoint", "training checkpoint", "official"])
def test_torch_files_that_would_run_code_are_refused(tmp_path, kind):
    marker = tmp_path / "ran"
    payload = Payload(marker, "exec")
    if kind == "sam2 checkpoint":
        path = tmp_path / "tiny.pt"
        torch.save({"model": build_tiny().state_dict(), "x": payload}, path)
        error, load = CheckpointError, lambda: load_checkpoint(build_tiny(), path)
    elif kind == "training checkpoint":
        _, _, trainable = adapted()
        path = write_training_checkpoint(tmp_path / "run", "adaptformer", {}, trainable,
                                         scheduler=payload)
        error, load = AdapterFileError, lambda: export_training_checkpoint(path, tmp_path / "a")
    else:
        path = write_official(tmp_path / "x.pth", official_state(TINY_DIMS, TINY_STAGE_BLOCKS,
                                                                  0.3), payload=payload)
        error, load = AdapterFileError, lambda: convert_official(path, tmp_path / "a", TINY)
    message = one_line(error, load)
    assert "cannot be read safely" in message
    assert "holds exec" in message or "holds builtins.exec" in message  # as torch names it
    assert not marker.exists()
