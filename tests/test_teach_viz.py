"""Pictures: the GIF has one frame per output voxel, the HTML page is valid, self-contained HTML
with the data inside, the PNGs are written, and the MRI demo's edges match scipy."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
PIL = pytest.importorskip("PIL.Image")

import conv3d  # noqa: E402
from conv3d.cli import main  # noqa: E402
from conv3d.teach import viz  # noqa: E402
from conv3d.teach.problem import make_problem  # noqa: E402


class _Checker(HTMLParser):
    """Collects tags and script bodies, and checks that every opened tag is closed in order."""
    VOID = {"meta", "br", "img", "input", "link", "hr", "area", "base", "col", "embed", "source",
            "track", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.scripts, self.tags = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):  # <meta ... />: opened and closed at once
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "script":
            self.scripts.append(data)


def test_gif_has_one_frame_per_output_voxel(tmp_path, capsys):
    path = tmp_path / "slide.gif"
    code = main(["animate", "--input", "2x2x4", "--kernel", "2x2x2", "--random", "1", "--out",
                 str(path), "--fps", "4"])
    out = capsys.readouterr().out
    assert code == 0 and str(path.resolve()) in out
    with PIL.open(path) as im:
        assert im.format == "GIF"
        assert im.n_frames == 1 * 1 * 3  # OD*OH*OW = 1*1*3, from the output-size formula


def test_gif_frames_differ_as_the_kernel_moves(tmp_path):
    pr = make_problem(input_size="2x2x3", kernel="2x2x2", seed=2)
    n = viz.animate(pr, tmp_path / "a.gif", fps=2)
    with PIL.open(tmp_path / "a.gif") as im:
        assert im.n_frames == n == 2
        im.seek(0)
        first = np.asarray(im.convert("RGB"))
        im.seek(1)
        second = np.asarray(im.convert("RGB"))
    assert first.shape == second.shape and (first != second).any()


def test_interactive_html_is_valid_self_contained_and_holds_the_data(tmp_path, capsys):
    path = tmp_path / "cube.html"
    code = main(["visualize", "--example", "cube", "--html", str(path)])
    assert code == 0 and str(path.resolve()) in capsys.readouterr().out
    text = path.read_text(encoding="utf-8")
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert not checker.errors and checker.stack == []
    assert text.lstrip().lower().startswith("<!doctype html>")
    # everything is inline: no script, style sheet, image or font is loaded from anywhere
    assert not [a for t, a in checker.tags if t in ("script", "img", "iframe") and "src" in a]
    assert not [a for t, a in checker.tags if t == "link"]
    assert "http://" not in text and "https://" not in text
    # the data: the cube's input and filter (the page computes the output itself; the browser
    # tests check what it shows against conv3d)
    raw = json.loads((Path(conv3d.__file__).parent / "data" / "cube4x4x4.json").read_text())
    config = json.loads(re.search(r'id="explorer-config">(.*?)</script>', text, re.S).group(1))
    np.testing.assert_array_equal(config["fixed"]["x"], [raw["input"]])
    np.testing.assert_array_equal(config["fixed"]["w"], [[raw["filter"]]])
    assert config["fixed"]["stride"] == [1, 1, 1] and config["fixed"]["padding"] == [[0, 0]] * 3


def test_interactive_html_builds_in_well_under_5_seconds(tmp_path):
    """The page used to hold one plotly frame per step and took tens of seconds to write."""
    import time
    pr = make_problem(input_size="3x5x5", kernel="3", padding="1", stride="2", seed=4)
    start = time.perf_counter()
    steps = viz.interactive_html(pr, tmp_path / "stride.html")
    assert time.perf_counter() - start < 5
    assert steps == 2 * 3 * 3
    assert (tmp_path / "stride.html").stat().st_size < 200_000


def test_pngs_are_written_and_labelled(tmp_path, capsys):
    code = main(["visualize", "--input", "3x5x5", "--padding", "1", "--stride", "2", "--at",
                 "1,1,1", "--random", "4", "--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    for name in ("slices.png", "voxels.png"):
        assert str((tmp_path / name).resolve()) in out
        with PIL.open(tmp_path / name) as im:
            assert im.format == "PNG" and im.size[0] > 500
    pr = make_problem(input_size="3x5x5", padding="1", stride="2", seed=4)
    fig = viz.slice_grid(pr, (1, 1, 1))
    titles = [ax.get_title() for ax in fig.axes]
    # 5 padded input slices, 3 kernel slices, 2 output slices, every one labelled
    assert sum(t.startswith("INPUT x") for t in titles) == 5
    assert sum(t.startswith("WEIGHTS w") for t in titles) == 3
    assert sum(t.startswith("OUTPUT y") for t in titles) == 2
    assert sum("(padding)" in t for t in titles) == 2
    import conv3d.functional as F
    from conv3d import Tensor
    value = F.conv3d(Tensor(pr.x), Tensor(pr.w), stride=2, padding=1).numpy()[0, 0, 1, 1, 1]
    assert fig._suptitle.get_text().split("\n")[0].endswith(f"= {int(value)}")


def test_mri_demo_edges_match_scipy(tmp_path):
    pytest.importorskip("nibabel")
    ndimage = pytest.importorskip("scipy.ndimage")
    from conv3d.teach import volume_demo
    vol = volume_demo.load_scan()
    assert vol.ndim == 3 and vol.min() == 0 and vol.max() == 1
    edges = volume_demo.edge_strength(vol)
    # reference: scipy's correlate with border replication, one Sobel kernel per axis
    der, smo = np.array([-1.0, 0.0, 1.0]), np.array([1.0, 2.0, 1.0])
    kernels = [np.einsum("i,j,k->ijk", *(der if a == b else smo for b in range(3))) / 16
               for a in range(3)]
    ref = np.sqrt(sum(ndimage.correlate(vol.astype(np.float64), k, mode="nearest") ** 2
                      for k in kernels))
    np.testing.assert_allclose(edges, ref, rtol=1e-4, atol=1e-5)
    path = volume_demo.render(tmp_path / "mri.png")
    with PIL.open(path) as im:
        assert im.format == "PNG"


def test_animation_refuses_thousands_of_frames(capsys, tmp_path):
    code = main(["animate", "--input", "12x12x12", "--kernel", "3", "--out", str(tmp_path / "a.gif")])
    assert code == 2
    assert "1000 frames" in capsys.readouterr().err  # 10*10*10 output voxels
    assert not (tmp_path / "a.gif").exists()
