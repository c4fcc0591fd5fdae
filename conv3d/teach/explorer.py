"""One self-contained HTML page that computes a 3D convolution in the browser, product by product.

The page (``web/explorer.html``, ``explorer.css`` and the scripts ``convmath.js`` (the
arithmetic), ``view3d.js`` (the 3D drawing) and ``explorer.js`` (the page), inlined into one
file) is the 3D counterpart of CNN Explainer: sliders for the input size, kernel, stride, padding (including 'same'),
dilation and channels; hover or click an output voxel to see its receptive field in 3D, the depth
slices side by side, the products with per-slice subtotals, the output-size formula with the
numbers filled in and the NumPy line that computes the same voxel; a step slider and Play walk
through every output voxel, and the backward view shows which outputs and weights feed one input
voxel's gradient.

Nothing is loaded from the network and no server is needed: the script and the style sheet are
inlined, and the only fonts are the system's. The page's arithmetic is its own (JavaScript), so
the browser tests check it against ``conv3d.functional.conv3d``.

* ``explorer_html()``: the free page, every setting on a slider, the worked cube by default.
* ``explorer_html(problem)``: a ``ConvProblem``'s own numbers and settings, fixed (what
  ``conv3d animate --html`` writes): the step slider, Play, hovering and the backward view.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from .problem import ConvProblem, fmt

WEB = Path(__file__).parent / "web"
#: the fixed page draws every padded input voxel as a table cell; beyond this it is unreadable
MAX_CELLS = 20_000


def _asset(name: str) -> str:
    return (WEB / name).read_text(encoding="utf-8")


def _cube_config() -> dict:
    from .cube import load_cube  # noqa: PLC0415
    cube = load_cube()
    return {"input": cube["input"].tolist(), "filter": cube["filter"].tolist(),
            "published": cube["published_output"].tolist()}


def fixed_config(pr: ConvProblem, n: int = 0) -> dict:
    """The page's description of one problem: sample n's input (C, D, H, W), all weights, bias."""
    Dp, Hp, Wp = pr.padded_input().shape[2:]
    C = pr.x.shape[1]
    if C * Dp * Hp * Wp > MAX_CELLS:
        raise ValueError(f"the padded input has C*D*H*W = {C}*{Dp}*{Hp}*{Wp} = {C * Dp * Hp * Wp} "
                         f"cells, too many to draw one by one (at most {MAX_CELLS}); use a smaller "
                         f"--input or fewer --in-channels")
    if not 0 <= n < pr.x.shape[0]:
        raise ValueError(f"sample n={n} is outside the batch of {pr.x.shape[0]}")
    pads = ", ".join(f"{lo}+{hi}" if lo != hi else str(lo) for lo, hi in pr.padding)
    note = (f"Fixed by the command: input {'x'.join(map(str, pr.in_size))}, {C} channel(s), kernel "
            f"{'x'.join(map(str, pr.kernel))}, {pr.w.shape[0]} filter(s), stride "
            f"{'x'.join(map(str, pr.stride))}, padding {pads} (depth, height, width), dilation "
            f"{'x'.join(map(str, pr.dilation))}, bias {', '.join(fmt(v) for v in pr.b)}. "
            f"Data: {pr.source}"
            + (f" (sample {n} of {pr.x.shape[0]})" if pr.x.shape[0] > 1 else "")
            + ". Run `conv3d explore` for the page with every setting on a slider.")
    # the figure a problem was taken from, if any: the page says where it differs
    published = (pr.published.tolist() if pr.published is not None and pr.w.shape[0] == 1
                 and tuple(pr.published.shape) == pr.out_size else None)
    return {"x": pr.x[n].tolist(), "w": pr.w.tolist(), "b": [float(v) for v in pr.b],
            "published": published,
            "stride": list(pr.stride), "dilation": list(pr.dilation),
            "padding": [list(p) for p in pr.padding], "padding_text": pads, "source": pr.source,
            "note": note}


def explorer_html(problem: ConvProblem | None = None, title: str | None = None,
                  initial: dict | None = None) -> str:
    """The page as one string. ``initial`` sets the free page's sliders, e.g.
    ``{"input": 5, "kernel": 3, "stride": 2, "padding": "same", "dilation": 1, "channels": 2,
    "outchannels": 1, "data": "formula"}``."""
    config = {"cube": _cube_config(), "initial": initial or {}}
    if problem is not None:
        config["fixed"] = fixed_config(problem)
        title = title or ("A 3D convolution, voxel by voxel: output y = "
                          f"{'x'.join(map(str, problem.out_size))}")
    title = title or "3D convolution explorer"
    config["title"] = title
    # "</" would end the <script> element early; JSON allows "<\/" for it
    blob = json.dumps(config, separators=(",", ":")).replace("</", "<\\/")
    page = _asset("explorer.html")
    # the arithmetic first, then the drawing that uses it, then the page that uses both
    script = "\n".join(_asset(name) for name in ("convmath.js", "view3d.js", "explorer.js"))
    for key, value in (("@@CSS@@", _asset("explorer.css")), ("@@JS@@", script),
                       ("@@CONFIG@@", blob), ("@@TITLE@@", html.escape(title))):
        page = page.replace(key, value)
    return page


def write_explorer(path, problem: ConvProblem | None = None, **kwargs) -> Path:
    """Write the page to ``path`` (parent folders are created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(explorer_html(problem, **kwargs), encoding="utf-8")
    return path
