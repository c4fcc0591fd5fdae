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
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: every public module whose names the API reference must cover
PUBLIC_MODULES = [
    "conv3d", "conv3d.functional", "conv3d.core", "conv3d.core.tensor", "conv3d.core.backend",
    "conv3d.core.shapes", "conv3d.core.gradcheck", "conv3d.core.dlpack", "conv3d.nn",
    "conv3d.nn.init", "conv3d.nn.summary", "conv3d.optim", "conv3d.datasets", "conv3d.train",
    "conv3d.train.recipes", "conv3d.teach", "conv3d.teach.cube", "conv3d.cuda",
    "conv3d.cuda.launch", "conv3d.cuda.emulator", "conv3d.cuda.nvrtc", "conv3d.interop",
    "conv3d.interop.torch_layout", "conv3d.interop.onnx_export", "conv3d.onnx",
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
