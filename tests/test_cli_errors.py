"""Bad input to the ``conv3d`` command: a one-line error naming the argument, exit status 2,
and nothing started or created; a closed pipe (``| head``) ends the command quietly with 0."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conv3d.cli import main

ROOT = Path(__file__).resolve().parent.parent


def exit_code_and_error(capsys, argv):
    """(exit status, stderr) of ``conv3d argv``, whether argparse or the command refused it."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.err, captured.out


def assert_one_line_error(err, *words):
    last = err.strip().splitlines()[-1]
    assert "error:" in last, err
    for w in words:
        assert w in last, f"{w!r} not in {last!r}"


@pytest.mark.parametrize("argv, arg", [
    (["train", "motion", "--n-train", "0"], "--n-train"),
    (["train", "keras-3d-mnist", "--n-test", "0"], "--n-test"),
    (["train", "keras-3d-mnist", "--epochs", "-1"], "--epochs"),
    (["train", "motion", "--n-train", "ten"], "--n-train"),
    (["explain", "--batch", "0"], "--batch"),
    (["explain", "--in-channels", "0"], "--in-channels"),
    (["shapes", "c3d", "--width", "0"], "--width"),
])
def test_out_of_range_numbers_are_refused_by_name(capsys, argv, arg):
    code, err, out = exit_code_and_error(capsys, argv)
    assert code == 2 and out == ""  # nothing ran: no training log, no table
    assert_one_line_error(err, f"argument {arg}")


def test_resume_needs_a_checkpoint(capsys):
    code, err, out = exit_code_and_error(capsys, ["train", "keras-3d-mnist", "--resume"])
    assert code == 2 and out == ""
    assert_one_line_error(err, "--resume", "--checkpoint")


def test_checkpoint_in_a_missing_folder_is_refused_not_created(capsys, tmp_path):
    missing = tmp_path / "no" / "such"
    code, err, out = exit_code_and_error(
        capsys, ["train", "keras-3d-mnist", "--checkpoint", str(missing / "c.npz")])
    assert code == 2 and out == ""
    assert_one_line_error(err, "--checkpoint", str(missing))
    assert not (tmp_path / "no").exists()


def test_missing_kaggle_file(capsys, tmp_path):
    path = tmp_path / "full_dataset_vectors.h5"
    code, err, out = exit_code_and_error(capsys, ["train", "keras-3d-mnist", "--kaggle",
                                                  str(path)])
    assert code == 2 and out == ""
    assert_one_line_error(err, "--kaggle", str(path))


def test_keras_only_options_are_refused_for_motion(capsys, tmp_path):
    code, err, _ = exit_code_and_error(capsys, ["train", "motion", "--checkpoint",
                                                str(tmp_path / "c.npz")])
    assert code == 2
    assert_one_line_error(err, "--checkpoint", "keras-3d-mnist")


@pytest.mark.parametrize("argv, words", [
    (["train", "motion", "--resume"], ("--resume", "segmentation")),
    (["train", "keras-3d-mnist", "--norm", "group"], ("--norm", "segmentation")),
    (["train", "motion", "--upsample", "trilinear"], ("--upsample", "segmentation")),
    (["train", "segmentation", "--kaggle", "f.h5"], ("--kaggle", "keras-3d-mnist")),
    (["train", "segmentation", "--norm", "layer"], ("--norm", "layer")),
], ids=["resume-motion", "norm-keras", "upsample-motion", "kaggle-segmentation", "bad-norm"])
def test_segmentation_options_are_refused_elsewhere(capsys, argv, words):
    code, err, out = exit_code_and_error(capsys, argv)
    assert code == 2 and out == ""
    assert_one_line_error(err, *words)


def test_batch_zero_names_the_option_not_an_empty_range(capsys):
    code, err, _ = exit_code_and_error(capsys, ["explain", "--batch", "0"])
    assert code == 2 and "0 <= n < 0" not in err


@pytest.mark.parametrize("flag, value", [("--in-channels", "3"), ("--batch", "2"),
                                         ("--out-channels", "2"), ("--input", "5x5x5")])
def test_cube_example_refuses_size_options_it_would_ignore(capsys, flag, value):
    code, err, out = exit_code_and_error(capsys, ["explain", "--example", "cube", flag, value])
    assert code == 2 and out == ""
    assert_one_line_error(err, flag, "1 channel")


def test_cube_example_accepts_the_values_it_has(capsys):
    code, _, out = exit_code_and_error(capsys, ["explain", "--example", "cube", "--in-channels",
                                                "1", "--at", "0,0,1"])
    assert code == 0 and "= -36" in out  # the worked example's true value (figure: -38)


def test_malformed_json_names_the_file_and_line(capsys, tmp_path):
    path = tmp_path / "volume.json"
    path.write_text('{"input": [[1, 2],\n  oops]}\n')
    code, err, out = exit_code_and_error(capsys, ["explain", "--input-file", str(path)])
    assert code == 2 and out == ""
    assert_one_line_error(err, "--input-file", str(path), "line 2")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [
    [sys.executable, "-m", "conv3d", "explain", "--example", "cube", "--at", "0,0,1"],
    [sys.executable, "-m", "conv3d", "shapes", "c3d"],
    [sys.executable, str(ROOT / "examples" / "worked_cube.py")],
])
def test_a_closed_pipe_ends_quietly_with_status_0(argv):
    """`... | head -1` with the reader gone before the first write: every write fails with
    EPIPE, deterministically (a real `head` may let a short output through first)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
