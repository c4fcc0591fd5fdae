"""The documentation site builds with ``mkdocs build --strict`` (a broken link, a missing page or a
bad API reference fails it), and its API reference covers every public name of every public module.
"""
from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: every public module whose names the API reference must cover
PUBLIC_MODULES = [
    "conv3d", "conv3d.functional", "conv3d.core", "conv3d.core.tensor", "conv3d.core.backend",
    "conv3d.core.shapes", "conv3d.core.geometry", "conv3d.core.gradcheck", "conv3d.core.dlpack", "conv3d.nn",
    "conv3d.nn.init", "conv3d.nn.summary", "conv3d.optim", "conv3d.datasets", "conv3d.train",
    "conv3d.train.recipes", "conv3d.train.segmentation", "conv3d.teach", "conv3d.teach.cube",
    "conv3d.teach.segment_view", "conv3d.io", "conv3d.cuda", "conv3d.cuda.launch",
    "conv3d.cuda.emulator", "conv3d.cuda.nvrtc", "conv3d.cuda.resources", "conv3d.interop",
    "conv3d.interop.torch_layout", "conv3d.interop.onnx_export", "conv3d.onnx", "conv3d.models",
    "conv3d.ops.fast", "conv3d.ops.fast.workspace", "conv3d.ops.fast.threads",
]
#: subpackages of conv3d that are not user API, with the reason
INTERNAL = {
    "ops": "implementation of conv3d.functional, documented there (its user settings live in "
           "conv3d.ops.fast, listed above)",
    "cli": "the conv3d command, documented by --help and the tutorials",
    "bench": "the suites of `conv3d bench`, documented by --help and docs/tutorials/benchmarking.md",
    "kernels": "CUDA C sources, documented in the concept page on CUDA kernels",
    "data": "package data (the worked cube)",
    "__main__": "python -m conv3d",
}


def public_names(modname: str) -> list[str]:
    """``__all__`` when the module defines it, else its own public functions and classes; the
    package root also counts functions it re-exports without listing them (e.g. summary)."""
    module = importlib.import_module(modname)
    names = set(getattr(module, "__all__", []))
    if not hasattr(module, "__all__") or modname == "conv3d":
        for name, obj in vars(module).items():
            if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if obj.__module__ == modname or (modname == "conv3d" and
                                             obj.__module__.startswith("conv3d.")):
                names.add(name)
    return sorted(names)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    hint = "is not installed: pip install -e '.[docs]'"
    for module in ("mkdocs", "mkdocstrings", "material"):
        pytest.importorskip(module, reason=f"{module} {hint}")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(out)], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def test_mkdocs_build_strict_passes(site):
    assert (site / "index.html").exists()
    for page in ["concepts/convolution", "tutorials/first-convolution", "instructor-guide",
                 "interop", "api/functional"]:
        assert (site / page / "index.html").exists(), f"{page} was not built"


def test_api_reference_covers_every_public_name(site):
    anchors = set()
    for html in (site / "api").rglob("*.html"):
        anchors |= set(re.findall(r'id="(conv3d[\w.]*)"', html.read_text()))
    missing = []
    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        if modname not in anchors and modname != "conv3d":
            missing.append(f"{modname} (the module itself)")
        for name in public_names(modname):
            obj = getattr(module, name)
            candidates = {f"{modname}.{name}"}
            if inspect.ismodule(obj):
                candidates.add(obj.__name__)
            elif getattr(obj, "__module__", None) and hasattr(obj, "__qualname__"):
                candidates.add(f"{obj.__module__}.{obj.__qualname__}")
            if not candidates & anchors:
                missing.append(f"{modname}.{name}")
    assert not missing, "not in the API reference (docs/api/*.md): " + ", ".join(missing)


def test_every_public_subpackage_is_listed():
    import conv3d
    found = {m.name for m in pkgutil.iter_modules(conv3d.__path__)}
    unlisted = [name for name in found if name not in INTERNAL and not name.startswith("_")
                and f"conv3d.{name}" not in PUBLIC_MODULES]
    assert not unlisted, (f"new public module(s) {unlisted}: add an API page in docs/api/ and list "
                          f"them in PUBLIC_MODULES (or in INTERNAL with the reason)")


# ---- offline: nothing from another host, math and fonts rendered from the site itself -----------
class _References(HTMLParser):
    """Every URL a page loads by itself (not the links a reader may follow)."""
    LOADS = {"script": "src", "img": "src", "iframe": "src", "source": "src", "audio": "src",
             "video": "src", "embed": "src", "object": "data", "link": "href"}

    def __init__(self):
        super().__init__()
        self.urls, self.styles = [], []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self.LOADS.get(tag) in attrs:
            self.urls.append((tag, attrs[self.LOADS[tag]]))
        if "style" in attrs:
            self.styles.append(attrs["style"] or "")
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


REMOTE = re.compile(r"^\s*(https?:)?//", re.I)
CSS_REMOTE = re.compile(r"(url\(\s*['\"]?\s*(https?:)?//|@import\s+['\"]?(https?:)?//)", re.I)


def test_site_loads_no_script_stylesheet_or_font_from_another_host(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 20
    remote = []
    for page in pages:
        refs = _References()
        refs.feed(page.read_text(encoding="utf-8"))
        rel = page.relative_to(site)
        remote += [f"{rel}: <{tag}> {url}" for tag, url in refs.urls if REMOTE.match(url)]
        remote += [f"{rel}: style {m.group(0)}"
                   for s in refs.styles for m in CSS_REMOTE.finditer(s)]
    for css in site.rglob("*.css"):
        remote += [f"{css.relative_to(site)}: {m.group(0)}"
                   for m in CSS_REMOTE.finditer(css.read_text(encoding="utf-8", errors="replace"))]
    assert not remote, "loaded from another host:\n" + "\n".join(remote[:30])
    # and what the pages do load is there: KaTeX's script, style sheet and fonts
    index = (site / "index.html").read_text(encoding="utf-8")
    for asset in ("vendor/katex/katex.min.js", "vendor/katex/katex.min.css",
                  "javascripts/katex-init.js"):
        assert asset in index and (site / asset).exists(), asset
    assert list((site / "vendor" / "katex" / "fonts").glob("KaTeX_Main-Regular.woff2"))


def test_the_explorer_page_in_the_docs_is_up_to_date(tmp_path):
    """docs/explore/explore.html is what `conv3d explore --out docs/explore/explore.html` writes."""
    from conv3d.cli import main
    fresh = tmp_path / "explore.html"
    assert main(["explore", "--out", str(fresh)]) == 0
    committed = ROOT / "docs" / "explore" / "explore.html"
    assert committed.read_text(encoding="utf-8") == fresh.read_text(encoding="utf-8"), (
        "docs/explore/explore.html is stale: run conv3d explore --out docs/explore/explore.html")


@pytest.fixture(scope="module")
def served(site):
    """The built site over HTTP on 127.0.0.1 (as `mkdocs serve` or any web server shows it:
    mkdocs-material's search does not run from file://)."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    from _browser import launch
    pw, br = launch()
    yield br
    br.close()
    pw.stop()


@pytest.mark.parametrize("page_path", ["concepts/output-size/", "concepts/backward/", "explore/"])
def test_formulas_render_offline(browser, served, page_path):
    from _browser import open_page
    page, log = open_page(browser, page_path, server=served)
    page.wait_for_function("document.querySelectorAll('.arithmatex').length > 0 && "
                           "document.querySelectorAll('.arithmatex').length === "
                           "document.querySelectorAll('.arithmatex .katex').length",
                           timeout=10_000)
    assert page.evaluate("document.querySelectorAll('.katex-error').length") == 0
    page.evaluate("document.fonts.ready.then(() => true)")
    fonts = page.evaluate("[...document.fonts].filter(f => f.status === 'loaded')"
                          ".map(f => f.family)")
    assert "KaTeX_Main" in fonts and "KaTeX_Math" in fonts, fonts
    if page_path == "explore/":   # the embedded explorer runs inside the docs page
        frame = page.frame_locator("iframe").locator("#summary")
        y00 = frame.inner_text(timeout=10_000)
        from conv3d.teach.cube import engine_output, load_cube
        assert f"y[0, 0, 0, 0] = {int(engine_output(load_cube())[0, 0, 0])}" in y00
    assert not log.problems()
    page.close()
