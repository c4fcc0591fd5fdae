"""conv3d.models.clip and ``conv3d predict``: the top classes of a generated video, checked
against torch running the same weights on torchvision's preprocessing."""
import json
import math

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is not installed (pip install 'conv3d[video]')")

from _torchvision_oracle import torchvision_module  # noqa: E402
from test_predict_video import torchvision_preset, write_video  # noqa: E402

from conv3d import nn  # noqa: E402
from conv3d.cli import main  # noqa: E402
from conv3d.datasets.video import VideoClassification, read_frames  # noqa: E402
from conv3d.interop import to_torch_state_dict, torch_module  # noqa: E402
from conv3d.models import _registry, list_models  # noqa: E402
from conv3d.models.clip import (Prediction, classify_clip, format_predictions,  # noqa: E402
                                kinetics400_categories, load_clip_weights, read_checkpoint,
                                read_labels, top_k)


def tiny_clip_model(num_classes=7, weights=None):
    """A small stand-in for a Kinetics model: (N, 3, T, H, W) -> (N, num_classes)."""
    return nn.Sequential(nn.Conv3d(3, 6, 3, stride=2), nn.BatchNorm3d(6), nn.ReLU(),
                         nn.GlobalAvgPool3d(), nn.Linear(6, num_classes))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "squares.mp4"
    write_video(path)
    return path


@pytest.fixture
def tiny_registered(monkeypatch):
    monkeypatch.setitem(_registry._MODELS, "tiny_clip_model", tiny_clip_model)
    return "tiny_clip_model"


def test_top_k_softmax_by_hand():
    # softmax of (0, ln 2, ln 3, ln 4) is (1, 2, 3, 4) / 10
    got = top_k(np.log([1.0, 2.0, 3.0, 4.0]), k=3, categories=["a", "b", "c", "d"])
    assert [(p.rank, p.index, p.label) for p in got] == [(1, 3, "d"), (2, 2, "c"), (3, 1, "b")]
    np.testing.assert_allclose([p.probability for p in got], [0.4, 0.3, 0.2], rtol=1e-12)
    with pytest.raises(ValueError, match="3 class names for a model with 4 outputs"):
        top_k(np.zeros(4), categories=["a", "b", "c"])


def test_classify_clip_matches_torch(video):
    """The same weights in torch, on torchvision's preset of the same frames, give the same top 5."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    model = tiny_clip_model(7)
    transform = VideoClassification((32, 32), (36, 48))
    got = classify_clip(model, video, 8, "uniform", transform, k=5)
    frames = read_frames(video, 8, "uniform")
    clip = torchvision_preset(frames, crop_size=(32, 32), resize_size=(36, 48))
    with torch.no_grad():
        probs = torch_module(model).eval()(torch.from_numpy(clip[None])).softmax(1)[0].double()
    values, indices = probs.topk(5)
    assert [p.index for p in got] == indices.tolist()
    np.testing.assert_allclose([p.probability for p in got], values.numpy(), rtol=1e-4)
    assert [p.label for p in got] == [None] * 5


def test_format_fits_80_columns():
    preds = [Prediction(1, 3, "x" * 200, 0.91234), Prediction(2, 0, None, 0.05)]
    lines = format_predictions(preds).splitlines()
    assert len(lines) == 2 and all(len(line) <= 80 for line in lines)
    assert lines[0].startswith(" 1  xxx") and lines[0].endswith("...  0.9123")
    assert lines[1].split() == ["2", "class", "0", "0.0500"]


def test_kinetics400_list():
    names = kinetics400_categories()
    assert len(names) == len(set(names)) == 400
    assert names[0] == "abseiling" and names[-1] == "zumba"
    assert read_labels("kinetics400") == names


def test_labels_files(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"categories": ["run", "jump"]}))
    (tmp_path / "b.txt").write_text("run\n\njump\n")
    assert read_labels(tmp_path / "a.json") == read_labels(tmp_path / "b.txt") == ["run", "jump"]
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_labels(tmp_path / "c.txt")


def test_checkpoints_carry_categories(tmp_path):
    state = to_torch_state_dict(tiny_clip_model(3))
    np.savez(tmp_path / "w.npz", categories=np.array(["run", "jump", "swim"]), **state)
    got, cats = read_checkpoint(tmp_path / "w.npz")
    assert cats == ["run", "jump", "swim"] and sorted(got) == sorted(state)
    load_clip_weights(tiny_clip_model(3), got)
    with pytest.raises(ValueError, match=r"'4.weight' has shape \(3, 6\) but the model has \(5, 6\)"):
        load_clip_weights(tiny_clip_model(5), got)
    torch = pytest.importorskip("torch", reason="torch is not installed")
    torch.save({"state_dict": {k: torch.from_numpy(v) for k, v in state.items()},
                "categories": ["run", "jump", "swim"]}, tmp_path / "w.pth")
    got, cats = read_checkpoint(tmp_path / "w.pth")
    assert cats == ["run", "jump", "swim"] and sorted(got) == sorted(state)


def run_cli(capsys, *argv):
    code = main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prints_five_named_classes(tmp_path, video, tiny_registered, capsys):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    model = tiny_clip_model(7)
    names = [f"action {i}" for i in range(7)]
    np.savez(tmp_path / "w.npz", categories=np.array(names), **to_torch_state_dict(model))
    code, out, err = run_cli(capsys, video, "--model", tiny_registered, "--weights",
                             tmp_path / "w.npz", "--num-classes", 7, "--frames", 8,
                             "--crop", 32, "--resize", "36,48")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 5 and all(len(line) <= 80 for line in lines)
    # the reference: torch on torchvision's preset of the first 8 frames
    clip = torchvision_preset(read_frames(video, 8), crop_size=(32, 32), resize_size=(36, 48))
    with torch.no_grad():
        probs = torch_module(model).eval()(torch.from_numpy(clip[None])).softmax(1)[0].double()
    values, indices = probs.topk(5)
    for rank, (line, p, i) in enumerate(zip(lines, values.tolist(), indices.tolist()), 1):
        assert line.split("  ")[0].strip() == str(rank)
        assert f"action {i}" in line
        assert math.isclose(float(line.split()[-1]), p, abs_tol=1e-4)


def test_cli_bad_input(tmp_path, video, tiny_registered, capsys):
    np.savez(tmp_path / "w.npz", **to_torch_state_dict(tiny_clip_model(7)))
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video")
    base = ["--model", tiny_registered, "--weights", tmp_path / "w.npz", "--num-classes", 7]
    cases = [
        ([tmp_path / "missing.mp4", *base], "no such file"),
        ([junk, *base], "cannot be decoded as a video"),
        ([video, *base, "--frames", 21], "has 20 frames, fewer than the 21 asked for"),
        ([video, *base[:-1], 400, "--frames", 4], "'4.weight' has shape (7, 6) but the model "
                                                  "has (400, 6)"),
        ([video, *base, "--frames", 4, "--labels", "kinetics400"],
         "--labels kinetics400 has 400 class names but the model has 7 classes"),
        ([video, "--model", "no_such_model", *base[2:]], "unknown model 'no_such_model'"),
        ([video, "--model", "unet3d", *base[2:]], "--model unet3d segments volumes"),
        ([video, *base[:3], tmp_path / "missing.npz", *base[4:]], "no such file"),
    ]
    for argv, message in cases:
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and out == "", argv
        assert message in err and err.count("\n") == 1, (argv, err)
        assert err.startswith("conv3d predict: error: ")


@pytest.mark.slow
def test_cli_r2plus1d_18(tmp_path, video, capsys):
    """The real model on a small input (runs once conv3d.models has r2plus1d_18), compared with
    torchvision's r2plus1d_18 holding the same random weights."""
    if "r2plus1d_18" not in list_models():
        pytest.skip("conv3d.models has no r2plus1d_18 yet")
    from conv3d.models import get_model
    model = get_model("r2plus1d_18", num_classes=400)
    state = to_torch_state_dict(model)
    np.savez(tmp_path / "r2plus1d_18.npz", **state)
    code, out, err = run_cli(capsys, video, "--model", "r2plus1d_18", "--weights",
                             tmp_path / "r2plus1d_18.npz", "--frames", 8, "--crop", 32,
                             "--resize", "36,48")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 5 and all(len(line) <= 80 for line in lines)
    torch = pytest.importorskip("torch", reason="torch is not installed")
    clip = torchvision_preset(read_frames(video, 8), crop_size=(32, 32), resize_size=(36, 48))
    resnet = torchvision_module("models.video.resnet")
    theirs = resnet.r2plus1d_18()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    with torch.no_grad():
        probs = theirs.eval()(torch.from_numpy(clip[None])).softmax(1)[0].double()
    fifth = float(probs.topk(5).values[-1])
    printed = [(int(line.split()[2]), float(line.split()[-1])) for line in lines]  # 1  class 17  0.0031
    assert len({i for i, _ in printed}) == 5
    for i, p in printed:  # each a top-5 class of torchvision's model (up to float ties), its p
        assert float(probs[i]) >= fifth - 1e-6 and abs(float(probs[i]) - p) <= 1e-4


def test_preset_sizes_are_torchvision_weights_own():
    from conv3d.models.clip import PRESETS, preset_sizes
    for module, name, enum in [("resnet", "r3d_18", "R3D_18_Weights"),
                               ("resnet", "mc3_18", "MC3_18_Weights"),
                               ("resnet", "r2plus1d_18", "R2Plus1D_18_Weights"),
                               ("s3d", "s3d", "S3D_Weights")]:
        tv = torchvision_module(f"models.video.{module}")
        kw = getattr(tv, enum).KINETICS400_V1.transforms.keywords
        assert preset_sizes(name) == (tuple(kw["crop_size"]), tuple(kw["resize_size"])), name
    assert set(PRESETS) == {"r3d_18", "mc3_18", "r2plus1d_18", "s3d"}
    assert preset_sizes("c3d") == ((112, 112), (128, 171))
