"""The two interactive pages in headless Chromium, with every network request blocked.

``conv3d explore`` (every setting on a slider) and ``conv3d animate --html`` (one problem fixed)
load, play, pause mid-play, slide and hover with no page error, console error, unhandled
rejection or external request; and every number they show (the whole output, the picked voxel's
products and subtotals, the NumPy line, one input voxel's gradient) equals conv3d's own float64
result on the same input and weights.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import conv3d.functional as F
from conv3d import Tensor
from conv3d.cli import main
from conv3d.core.shapes import same_padding
from conv3d.teach.problem import make_problem

from _browser import launch, open_page, set_slider


@pytest.fixture(scope="module")
def browser():
    pw, br = launch()
    yield br
    br.close()
    pw.stop()


# ---- the independent side: the page's documented data formula, and conv3d -----------------------
def formula_data(n, k, C, K):
    """What the explorer's 'formula' data are documented to be (see its 'data:' line)."""
    c, d, h, w = np.indices((C, n, n, n))
    x = ((1 + 3 * d + 5 * h + 7 * w + 11 * c) % 10).astype(np.float64)
    ko, c, a, b, e = np.indices((K, C, k, k, k))
    wt = (((2 * a + 3 * b + 5 * e + 7 * c + 11 * ko) % 5) - 2).astype(np.float64)
    return x, wt, np.zeros(K)


def conv(x, w, b, stride, padding, dilation):
    """conv3d's float64 output (K, OD, OH, OW) for one sample x (C, D, H, W)."""
    y = F.conv3d(Tensor(x[None]), Tensor(w), Tensor(b), stride=stride, padding=padding,
                 dilation=dilation)
    assert y.numpy().dtype == np.float64
    return y.numpy()[0]


def pads(x, k, stride, padding, dilation):
    if padding == "same":
        return [same_padding(i, k, stride, dilation) for i in x.shape[1:]]
    return [(padding, padding)] * 3


def shown_outputs(page):
    """Every output value in the page's output slices, by its (k, od, oh, ow)."""
    rows = page.eval_on_selector_all("table.output td", "els => els.map(e => [+e.dataset.k, "
                                     "+e.dataset.d, +e.dataset.h, +e.dataset.w, e.textContent])")
    return {tuple(r[:4]): float(r[4]) for r in rows}


def check_page_numbers(page, x, w, b, stride, padding, dilation, at):
    """The whole output, then voxel ``at``: its summary, products, subtotals and NumPy line."""
    y = conv(x, w, b, stride, padding, dilation)
    shown = shown_outputs(page)
    assert len(shown) == y.size
    for idx, v in shown.items():
        assert v == pytest.approx(y[idx], abs=1e-6), f"y{list(idx)}"
    cell = "table.output td[data-k='%d'][data-d='%d'][data-h='%d'][data-w='%d']" % at
    page.hover(cell)
    assert page.locator(cell).get_attribute("class").split().count("sel") == 1
    k, od, oh, ow = at
    summary = page.inner_text("#summary")
    value = float(re.search(r"y\[%d, %d, %d, %d\] = (-?[\d.e+-]+)" % at, summary).group(1))
    assert value == pytest.approx(y[at], abs=1e-6)
    # the products: x * w over the receptive field, from the padded input by plain slicing
    kD = w.shape[2]
    p = pads(x, kD, stride, padding, dilation)
    xp = np.pad(x, [(0, 0)] + p)
    span = dilation * (kD - 1) + 1
    field = xp[:, od * stride:od * stride + span:dilation, oh * stride:oh * stride + span:dilation,
               ow * stride:ow * stride + span:dilation]
    texts = page.eval_on_selector_all(".ptable td", "els => els.map(e => e.textContent)")
    assert len(texts) == field.size
    got = np.array([[float(v.strip("()")) for v in re.split(r"[×=]", t)] for t in texts])
    np.testing.assert_allclose(got[:, 0], field.ravel(), atol=1e-9)
    np.testing.assert_allclose(got[:, 1], w[k].ravel(), atol=1e-9)
    np.testing.assert_allclose(got[:, 2], (field * w[k]).ravel(), atol=1e-6)
    subs = page.eval_on_selector_all(".ptable .sub", "els => els.map(e => +e.dataset.subtotal)")
    np.testing.assert_allclose(subs, (field * w[k]).sum(axis=(2, 3)).ravel(), atol=1e-6)
    # the NumPy line the page prints, run here on the same arrays
    code = page.inner_text("#numpy")
    scope = {"np": np, "x": x, "w": w, "b": b, "y": np.full((w.shape[0],) + y.shape[1:], np.nan)}
    exec("\n".join(line.split("#")[0] for line in code.splitlines()), scope)
    assert scope["y"][at] == pytest.approx(y[at], abs=1e-6)
    return y


def check_play_pause(page, log):
    set_slider(page, "#speed", 100)
    start = page.evaluate("explorer.state().step")
    page.click("#play")
    assert page.inner_text("#play") == "Pause"
    page.wait_for_function(f"explorer.state().step >= {start} + 2 || "
                           f"explorer.state().step < {start}", timeout=10_000)
    page.click("#play")  # pause mid-play
    stopped = page.evaluate("explorer.state()")
    assert not stopped["playing"] and page.inner_text("#play") == "Play"
    page.wait_for_timeout(400)
    assert page.evaluate("explorer.state().step") == stopped["step"]
    assert not log.problems()


def check_layout(page):
    """Nothing clipped or overlapping, and the 3D view's labels sit over their own cubes."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    boxes = {s: page.locator(s).bounding_box() for s in ("#play", "#step", "#view3d")}
    a, b = boxes["#play"], boxes["#step"]
    assert a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"] or \
        a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"], "Play overlaps the slider"
    assert boxes["#view3d"]["height"] >= 300
    labels = page.evaluate("explorer.state().labels")
    assert labels["input"][0] < labels["output"][0], "the INPUT label is not left of OUTPUT"


def test_the_network_guard_catches_a_request(browser, tmp_path):
    """The check every other test relies on can fail: a page that fetches is caught."""
    page_file = tmp_path / "fetch.html"
    page_file.write_text("<html><body><img src='https://example.com/x.png'></body></html>")
    page, log = open_page(browser, page_file)
    page.wait_for_timeout(200)
    assert any("example.com" in p for p in log.problems())
    page.close()


def test_explore_default_is_the_worked_cube(browser, tmp_path):
    path = tmp_path / "explore.html"
    assert main(["explore", "--out", str(path)]) == 0
    page, log = open_page(browser, path)
    from conv3d.teach.cube import load_cube
    cube = load_cube()
    x, w = cube["input"][None], cube["filter"][None, None]
    state = page.evaluate("explorer.state()")
    assert state["settings"]["data"] == "cube"
    np.testing.assert_array_equal(state["x"], x)
    y = check_page_numbers(page, x, w, np.zeros(1), 1, 0, 1, (0, 0, 0, 1))
    # where the article's figure disagrees with conv3d, the page says so (and only there)
    for at in np.ndindex(*y.shape):
        page.hover("table.output td[data-k='%d'][data-d='%d'][data-h='%d'][data-w='%d']" % at)
        published = cube["published_output"][at[1:]]
        note = f"The published figure prints {int(published)} here"
        assert (note in page.inner_text("#summary")) == (published != y[at]), at
    check_layout(page)
    check_play_pause(page, log)
    page.screenshot(path=str(tmp_path / "explore.png"), full_page=True)
    assert not log.problems()
    page.close()


SETTINGS = [  # (input, kernel, stride, padding, dilation, C, K, a voxel to hover)
    (5, 3, 2, 1, 1, 1, 1, (0, 2, 1, 2)),
    (6, 3, 2, "same", 1, 1, 1, (0, 2, 2, 1)),   # Keras 'same': 0 before, 1 after
    (6, 3, 1, 0, 2, 1, 1, (0, 1, 0, 1)),
    (3, 2, 1, 1, 1, 2, 2, (1, 3, 2, 0)),
]


@pytest.mark.parametrize("n,k,s,p,d,C,K,at", SETTINGS)
def test_explore_sliders_match_conv3d(browser, tmp_path, n, k, s, p, d, C, K, at):
    path = tmp_path / "explore.html"
    assert main(["explore", "--out", str(path)]) == 0
    page, log = open_page(browser, path)
    for name, value in (("input", n), ("kernel", k), ("stride", s), ("dilation", d),
                        ("channels", C), ("outchannels", K), ("padding", 4 if p == "same" else p)):
        set_slider(page, f"#s-{name}", value)
    state = page.evaluate("explorer.state()")
    assert state["settings"]["data"] == "formula"
    x, w, b = formula_data(n, k, C, K)
    np.testing.assert_array_equal(state["x"], x)
    np.testing.assert_array_equal(state["w"], w)
    y = check_page_numbers(page, x, w, b, s, p, d, at)
    formula = page.inner_text("#formula")
    for axis, o in zip(("depth", "height", "width"), y.shape[1:]):
        assert re.search(rf"^{axis}: o = .*\+ 1 = {o}\b", formula, re.M), formula
    assert not log.problems()
    page.close()


def test_explore_backward_matches_autograd_and_hover_in_3d(browser, tmp_path):
    path = tmp_path / "explore.html"
    assert main(["explore", "--out", str(path), "--input", "4", "--kernel", "2", "--stride", "2",
                 "--padding", "1", "--channels", "2", "--out-channels", "2"]) == 0
    page, log = open_page(browser, path)
    x, w, b = formula_data(4, 2, 2, 2)
    voxel = (1, 2, 1, 3)
    page.click("table.input td[data-c='%d'][data-d='%d'][data-h='%d'][data-w='%d']" % voxel)
    state = page.evaluate("explorer.state()")
    assert state["mode"] == "backward" and tuple(state["backward"]["voxel"]) == voxel
    xt = Tensor(x[None].copy(), requires_grad=True)
    F.conv3d(xt, Tensor(w), stride=2, padding=1).sum().backward()
    grad = np.asarray(xt.grad)[0][voxel]
    assert state["backward"]["grad"] == pytest.approx(grad)
    assert f"= {int(grad)}" in page.inner_text("#summary")
    # which outputs read the voxel: conv3d on a one-hot input with all-ones weights
    onehot = np.zeros_like(x)
    onehot[voxel] = 1
    reads = conv(onehot, np.ones_like(w), np.zeros(2), 2, 1, 1) != 0
    lit = page.eval_on_selector_all("table.output td.feeds", "els => els.map(e => [+e.dataset.k, "
                                    "+e.dataset.d, +e.dataset.h, +e.dataset.w])")
    assert sorted(map(tuple, lit)) == sorted(map(tuple, np.argwhere(reads)))
    # hovering over the 3D view in the forward view picks output voxels there
    page.click("#mode-forward")
    box = page.locator("#view3d").bounding_box()
    seen = set()
    for fx in np.linspace(0.5, 0.95, 9):
        for fy in np.linspace(0.15, 0.9, 6):
            page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            seen.add(tuple(page.evaluate("explorer.state().selected")))
    assert len(seen) >= 3, seen
    assert not log.problems()
    page.close()


ANIMATE = [  # CLI arguments, and the same convolution for conv3d (stride, padding, dilation)
    (["--input", "3x5x5", "--kernel", "3", "--padding", "1", "--stride", "2", "--random", "4"],
     dict(input_size="3x5x5", kernel="3", padding="1", stride="2", seed=4), (2, 1, 1),
     (0, 1, 1, 2)),
    (["--input", "4x6x6", "--kernel", "3", "--padding", "same", "--stride", "2", "--random", "1"],
     dict(input_size="4x6x6", kernel="3", padding="same", stride="2", seed=1), (2, "same", 1),
     (0, 1, 2, 2)),
    (["--input", "5x5x5", "--kernel", "2", "--dilation", "2", "--in-channels", "2",
      "--out-channels", "2", "--bias", "0.5", "--random", "2"],
     dict(input_size="5x5x5", kernel="2", dilation="2", in_channels=2, out_channels=2, bias=0.5,
          seed=2), (1, 0, 2), (1, 2, 1, 0)),
]


@pytest.mark.parametrize("args,problem,geometry,at", ANIMATE)
def test_animate_page_plays_pauses_and_matches_conv3d(browser, tmp_path, args, problem, geometry,
                                                      at):
    path = tmp_path / "page.html"
    assert main(["animate", *args, "--html", str(path)]) == 0
    assert not (tmp_path / "conv3d.gif").exists()
    pr = make_problem(**problem)
    page, log = open_page(browser, path)
    stride, padding, dilation = geometry
    kD = pr.w.shape[2]
    if padding == "same":
        assert [tuple(p) for p in page.evaluate("explorer.state().settings.padding")] == \
            [same_padding(i, kD, stride, dilation) for i in pr.x.shape[2:]]
    check_page_numbers(page, pr.x[0], pr.w, pr.b, stride, padding, dilation, at)
    check_layout(page)
    check_play_pause(page, log)
    set_slider(page, "#step", 3)
    assert page.evaluate("explorer.state().step") == 3
    page.screenshot(path=str(tmp_path / "animate.png"), full_page=True)
    assert not log.problems()
    page.close()


def test_explore_says_when_the_kernel_does_not_fit(browser, tmp_path):
    path = tmp_path / "explore.html"
    assert main(["explore", "--out", str(path)]) == 0
    page, log = open_page(browser, path)
    set_slider(page, "#s-input", 2)
    set_slider(page, "#s-kernel", 4)  # span 4 > input 2: no output
    state = page.evaluate("explorer.state()")
    assert state["error"] and state["steps"] == 0
    assert "kernel span d(k-1)+1 = 4 is larger than the padded depth 2" in \
        page.inner_text("#summary")
    assert page.locator("table.output td").count() == 0
    set_slider(page, "#s-padding", 1)  # padded 4: one output voxel per axis again
    state = page.evaluate("explorer.state()")
    assert state["error"] is None and state["out_size"] == [1, 1, 1]
    x, w, b = formula_data(2, 4, 1, 1)
    assert shown_outputs(page)[(0, 0, 0, 0)] == conv(x, w, b, 1, 1, 1)[0, 0, 0, 0]
    assert not log.problems()
    page.close()
