"""Faults of files and folders: bombs, truncated and animated images, FIFOs, outputs that cannot
be written, a kill mid-write, two runs on one folder, and the CLI's last line of defence."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from tests.cli_helpers import assert_one_line_error, read_only_folder, run_sansa
from tests.conftest import blob_image
from tests.datasets_fixtures import make_folder
from tests.eval_fixtures import eval_roots, model_args  # noqa: F401  (fixtures)

JOURNAL = ".sansa-predict.jsonl"

REPO = Path(__file__).resolve().parents[1]
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


def bomb_png(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A 4x4 PNG whose header claims ``width`` x ``height`` (IHDR patched, CRC recomputed)."""
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # IHDR data starts after its length and type
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


def truncated_jpeg(path: Path) -> Path:
    """A JPEG cut in the middle of its pixel data: the header reads, decoding fails."""
    blob_image(path.with_suffix(".png"), seed=3)
    with Image.open(path.with_suffix(".png")) as img:
        img.save(path, quality=95)
    path.with_suffix(".png").unlink()
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


@pytest.fixture()
def no_hang():
    """Fail the test instead of blocking forever (on a FIFO)."""
    def give_up(signum, frame):
        raise TimeoutError("blocked for 60 s")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def predict(scene, tiny_model_args, *args) -> list:
    ref, mask = scene["refs"][0]
    return ["predict", ref, mask, *args, "--adapters", "none", *tiny_model_args]


# --- images ------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", [0, 1, 2], ids=["reference", "mask", "target"])
def test_a_decompression_bomb_is_one_line_before_any_work(role, scene, tiny_model_args, tmp_path,
                                                          capsys, monkeypatch):
    paths = [*scene["refs"][0], scene["targets"][0]]
    paths[role] = bomb_png(tmp_path / "bomb.png")
    out = tmp_path / "out"
    code, _, err = run_sansa(["predict", *paths, "--out", out, "--adapters", "none",
                              *tiny_model_args], capsys, monkeypatch)
    assert_one_line_error(code, err, "bomb.png has 900,000,000 pixels", "SANSA_MAX_PIXELS")
    assert not out.exists()


def test_a_bomb_in_visualize_features(scene, tiny_model_args, tmp_path, capsys, monkeypatch):
    bomb = bomb_png(tmp_path / "bomb.png")
    code, _, err = run_sansa(["visualize-features", scene["targets"][0], bomb, "--out",
                              tmp_path / "pca", *tiny_model_args], capsys, monkeypatch)
    assert_one_line_error(code, err, "bomb.png", "SANSA_MAX_PIXELS")


def test_dataset_readers_and_prepare_refuse_bombs(tmp_path, capsys, monkeypatch):
    from sansa_cli.datasets.reading import open_mask_array, open_rgb
    from sansa_cli.errors import DatasetError

    root, _ = make_folder(tmp_path / "parts")
    image = bomb_png(root / "images" / "bolt" / "img1.png")
    mask = bomb_png(root / "masks" / "bolt" / "img1.png")
    with pytest.raises(DatasetError, match="SANSA_MAX_PIXELS"):
        open_rgb(image)
    with pytest.raises(DatasetError, match="mask .*img1.png has 900,000,000 pixels"):
        open_mask_array(mask)
    monkeypatch.setenv("COLUMNS", "1000")  # one line per broken file
    code, out, err = run_sansa(["prepare", "folder", "--root", root], capsys, monkeypatch)
    assert code == 0, err
    assert "2 broken" in out and "img1.png has 900,000,000 pixels" in out


def test_the_pixel_limit_can_be_lowered_and_raised(scene, tiny_model_args, tmp_path, capsys,
                                                   monkeypatch):
    from sansa_cli.core.images import open_image_file

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after
    monkeypatch.setenv("SANSA_MAX_PIXELS", "5000")
    code, _, err = run_sansa(predict(scene, tiny_model_args, scene["targets"][0]), capsys,
                             monkeypatch)
    assert_one_line_error(code, err, "ref0.png has 7,680 pixels", "limit of 5,000")
    monkeypatch.setenv("SANSA_MAX_PIXELS", "lots")
    code, _, err = run_sansa(predict(scene, tiny_model_args, scene["targets"][0]), capsys,
                             monkeypatch)
    assert_one_line_error(code, err, "SANSA_MAX_PIXELS='lots'")
    monkeypatch.setenv("SANSA_MAX_PIXELS", str(10**9))  # above PIL's own refusal threshold
    with open_image_file(bomb_png(tmp_path / "big.png")) as img:  # the header opens
        assert img.size == (30000, 30000)


def test_a_truncated_target_stops_the_run_there(scene, tiny_model_args, tmp_path, capsys,
                                                monkeypatch):
    folder = tmp_path / "photos"
    for name in ("a0", "a1", "a3"):
        blob_image(folder / f"{name}.png", seed=len(name))
    truncated_jpeg(folder / "a2.jpg")
    out = tmp_path / "out"
    code, _, err = run_sansa(predict(scene, tiny_model_args, folder, "--out", out,
                                     "--batch-size", "1"), capsys, monkeypatch)
    assert_one_line_error(code, err, "a2.jpg", "truncated", "stopped at target 3 of 4",
                          "outputs of 2 targets before it written")
    # no .part, no lock; the journal a --resume continues from
    assert sorted(p.name for p in out.iterdir()) == [JOURNAL, "a0.png", "a1.png"]


def test_an_animated_target_is_segmented_on_its_first_frame(scene, tiny_model_args, tmp_path,
                                                            capsys, monkeypatch):
    frames = [Image.new("RGB", (40, 30), (80 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "clip.gif", save_all=True, append_images=frames[1:])
    out = tmp_path / "out"
    code, _, err = run_sansa(predict(scene, tiny_model_args, tmp_path / "clip.gif", "--out", out),
                             capsys, monkeypatch)
    assert code == 0, err
    warning = [line for line in err.splitlines() if line.startswith("warning: target")]
    assert len(warning) == 1 and "clip.gif has 3 frames" in warning[0], err
    assert "only its first frame is segmented" in warning[0]
    with Image.open(out / "clip.png") as mask:
        assert mask.size == (40, 30)


# --- FIFOs -------------------------------------------------------------------------------------

@needs_fifo
def test_a_fifo_among_targets_is_skipped_and_refused_by_name(scene, tiny_model_args, tmp_path,
                                                             no_hang, capsys, monkeypatch):
    folder = tmp_path / "photos"
    blob_image(folder / "a.png")
    os.mkfifo(folder / "pipe.jpg")
    out = tmp_path / "out"
    code, _, err = run_sansa(predict(scene, tiny_model_args, folder, "--out", out), capsys,
                             monkeypatch)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [JOURNAL, "a.png"]
    code, _, err = run_sansa(predict(scene, tiny_model_args, folder / "pipe.jpg"), capsys,
                             monkeypatch)
    assert_one_line_error(code, err, "pipe.jpg is not a regular file")


@needs_fifo
def test_prepare_lists_a_fifo_as_broken(tmp_path, no_hang, capsys, monkeypatch):
    root, _ = make_folder(tmp_path / "parts")
    os.mkfifo(root / "images" / "bolt" / "img9.jpg")
    os.mkfifo(root / "masks" / "bolt" / "img9.png")
    monkeypatch.setenv("COLUMNS", "1000")  # one line per broken file
    code, out, err = run_sansa(["prepare", "folder", "--root", root], capsys, monkeypatch)
    assert code == 0, err
    assert "2 broken" in out and "is not a regular file" in out


# --- output folders ----------------------------------------------------------------------------

def command(name, scene, tiny_model_args, eval_roots, checkpoint) -> list:
    """Arguments of a quick run of ``name`` without --out."""
    if name == "predict":
        return predict(scene, tiny_model_args, scene["targets"][0])
    if name == "visualize-features":
        return ["visualize-features", *scene["targets"][:2], *tiny_model_args]
    root, _ = eval_roots["fss1000"]
    return ["eval", "--dataset", "fss1000", "--data-root", root, "--folds", "0", "--shots", "1",
            "--episodes-per-fold", "1", *model_args(checkpoint)]


COMMANDS = ["predict", "eval", "visualize-features"]


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("kind, fragment", [("file", "is a file"),
                                            ("below a file", "lies below the file"),
                                            ("read-only", "not writable")])
def test_an_unusable_out_is_refused_before_any_work(name, kind, fragment, scene, tiny_model_args,
                                                    eval_roots, tiny_checkpoint, tmp_path,
                                                    capsys, monkeypatch):
    import sansa_cli.api

    monkeypatch.setattr(sansa_cli.api, "load_model", None)  # building a model would fail loudly
    args = command(name, scene, tiny_model_args, eval_roots, tiny_checkpoint)
    (tmp_path / "taken").write_text("mine")
    with contextlib.ExitStack() as stack:
        out = {"file": tmp_path / "taken", "below a file": tmp_path / "taken" / "out",
               "read-only": stack.enter_context(read_only_folder(tmp_path / "ro")) / "out"}[kind]
        code, _, err = run_sansa([*args, "--out", out], capsys, monkeypatch)
    assert_one_line_error(code, err, f"--out {out}", fragment)
    assert (tmp_path / "taken").read_text() == "mine"


def test_eval_checks_save_predictions_too(scene, tiny_model_args, eval_roots, tiny_checkpoint,
                                          tmp_path, capsys, monkeypatch):
    (tmp_path / "taken").write_text("mine")
    args = command("eval", scene, tiny_model_args, eval_roots, tiny_checkpoint)
    code, _, err = run_sansa([*args, "--out", tmp_path / "out", "--save-predictions",
                              tmp_path / "taken"], capsys, monkeypatch)
    assert_one_line_error(code, err, "--save-predictions", "is a file")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", COMMANDS)
def test_a_second_run_on_one_out_is_refused(name, scene, tiny_model_args, eval_roots,
                                            tiny_checkpoint, tmp_path, capsys, monkeypatch):
    from sansa_cli.artifacts.files import LOCK_NAME, output_lock

    out = tmp_path / "out"
    args = command(name, scene, tiny_model_args, eval_roots, tiny_checkpoint)
    with output_lock(out):  # another run holds it
        code, _, err = run_sansa([*args, "--out", out], capsys, monkeypatch)
        assert list(out.iterdir()) == [out / LOCK_NAME]
    assert_one_line_error(code, err, f"--out {out} is in use by another sansa run "
                          f"(pid {os.getpid()})", "choose another folder")
    assert not out.exists()  # the lock's folder goes when the run that made it leaves it empty


def test_out_may_not_be_the_targets_folder(scene, tiny_model_args, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "photos"
    blob_image(folder / "a.jpg")
    code, _, err = run_sansa(predict(scene, tiny_model_args, folder, "--out", folder), capsys,
                             monkeypatch)
    assert_one_line_error(code, err, f"--out {folder} is the folder of the target",
                          str(folder / "masks"))
    assert sorted(p.name for p in folder.iterdir()) == ["a.jpg"]


def test_outputs_honour_the_umask(scene, tiny_model_args, tmp_path, capsys, monkeypatch):
    from sansa_cli.artifacts.files import write_bytes_atomic

    previous = os.umask(0o022)
    try:
        out = tmp_path / "out"
        code, _, err = run_sansa(predict(scene, tiny_model_args, scene["targets"][0], "--out", out,
                                         "--json", "--overlay"), capsys, monkeypatch)
        assert code == 0, err
        modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
        assert modes == {"t0.png": 0o644, "t0_overlay.jpg": 0o644, "predictions.json": 0o644,
                         JOURNAL: 0o644}
        os.umask(0o027)
        write_bytes_atomic(tmp_path / "private.bin", b"x")
        assert (tmp_path / "private.bin").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(previous)


def test_a_run_killed_mid_write_leaves_nothing_the_next_run_keeps(scene, tiny_model_args,
                                                                  tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    writer = ("import sys, time\n"
              "from sansa_cli.artifacts.files import atomic_path\n"
              "with atomic_path(sys.argv[1]) as tmp, tmp.open('wb') as f:\n"
              "    f.write(b'half a mask'); f.flush(); print('writing', flush=True)\n"
              "    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", writer, str(out / "t0.png")], cwd=REPO,
                            stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert len(list(out.glob(".t0.png.*.part"))) == 1 and not (out / "t0.png").exists()
    code, _, err = run_sansa(predict(scene, tiny_model_args, scene["targets"][0], "--out", out),
                             capsys, monkeypatch)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [JOURNAL, "t0.png"]
    with Image.open(out / "t0.png") as mask:
        assert mask.size == (96, 80)


def test_only_leftovers_of_dead_processes_are_removed(tmp_path):
    from sansa_cli.artifacts import files

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        parts = {pid: tmp_path / f".x.bin.{files._HOST}-{pid}-0123abcd.part"
                 for pid in (sleeper.pid, dead.pid, os.getpid())}
        for part in parts.values():
            part.write_bytes(b"partial")
        files.write_bytes_atomic(tmp_path / "x.bin", b"whole")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert [p.exists() for p in parts.values()] == [True, False, True]  # live writers' stay
    assert (tmp_path / "x.bin").read_bytes() == b"whole"


# --- JSON, episode lists -----------------------------------------------------------------------

def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_json_outputs_hold_no_nan(scene, tiny_model_args, tmp_path, capsys, monkeypatch):
    from sansa_cli.core.segmenter import SansaModel
    from sansa_cli.evaluation.report import write_results

    real = SansaModel.decode

    def nan_scores(*args, **kwargs):
        results = real(*args, **kwargs)
        for result in results:
            result.predicted_iou = float("nan")
        return results

    monkeypatch.setattr(SansaModel, "decode", nan_scores)
    out = tmp_path / "out"
    code, _, err = run_sansa(predict(scene, tiny_model_args, scene["targets"][0], "--out", out,
                                     "--json"), capsys, monkeypatch)
    assert code == 0, err
    assert _strict((out / "predictions.json").read_text())["targets"][0]["predicted_iou"] is None
    write_results(tmp_path, {"seed": float("inf")}, {}, [], {"run": {"seconds": float("nan")}})
    results = _strict((tmp_path / "results.json").read_text())
    assert results["settings"]["seed"] is None and results["run"]["seconds"] is None


def test_prepare_episodes_never_rewrites_a_file(tmp_path, capsys, monkeypatch):
    root, _ = make_folder(tmp_path / "parts")
    args = ["prepare", "folder", "--root", root, "--episodes", "--shots", "1"]
    mine = tmp_path / "mine.json"
    mine.write_text("my notes")
    code, _, err = run_sansa([*args, "--out", mine], capsys, monkeypatch)
    assert_one_line_error(code, err, f"--out {mine} already exists")
    assert mine.read_text() == "my notes"
    listed = tmp_path / "list.json"
    code, _, err = run_sansa([*args, "--out", listed], capsys, monkeypatch)
    assert code == 0, err
    stamp = listed.stat().st_mtime_ns
    code, _, err = run_sansa([*args, "--out", listed], capsys, monkeypatch)
    assert code == 0, err  # the same list again: left as it is
    assert listed.stat().st_mtime_ns == stamp


# --- the command line --------------------------------------------------------------------------

@pytest.mark.parametrize("after", ["folder", "file"])
def test_a_forgotten_reference_mask_is_named(after, scene, capsys, monkeypatch):
    ref, _ = scene["refs"][0]
    target = scene["dir"] / "targets" if after == "folder" else scene["targets"][0]
    code, _, err = run_sansa(["predict", ref, target], capsys, monkeypatch)
    assert_one_line_error(code, err, f"the reference {ref} has no mask",
                          "sansa predict REF REF_MASK TARGET", "--points, --box or --scribble")


def test_short_sam2_names_expand_to_sam2_1():
    from sansa_cli.core.choices import expand_sam2_name

    assert [expand_sam2_name(n) for n in ("tiny", "small", "base_plus", "large")] == [
        "sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus", "sam2.1_hiera_large"]
    for unchanged in ("sam2_hiera_tiny", "configs/x.yaml", "huge"):
        assert expand_sam2_name(unchanged) == unchanged


def test_an_unexpected_exception_is_one_line_unless_debugging(scene, capsys, monkeypatch):
    import sansa_cli.predict.job
    from sansa_cli.cli.app import main

    def broken(job):
        raise RuntimeError("boom\n  in a place nobody expected")

    monkeypatch.setattr(sansa_cli.predict.job, "run_predict", broken)
    ref, mask = scene["refs"][0]
    args = ["predict", ref, mask, scene["targets"][0]]
    code, _, err = run_sansa(args, capsys, monkeypatch)
    assert_one_line_error(code, err, "error: RuntimeError: boom in a place nobody expected "
                          "(this is a bug in sansa", "SANSA_DEBUG=1")
    assert "Traceback" not in err
    monkeypatch.setenv("SANSA_DEBUG", "1")
    monkeypatch.setattr(sys, "argv", ["sansa", *map(str, args)])
    with pytest.raises(RuntimeError, match="boom"):
        main()
