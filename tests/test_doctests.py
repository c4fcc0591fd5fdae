"""Every ``>>>`` example in conv3d's docstrings runs and prints what it shows (doctest).

Modules are found by walking the package, so a new example is picked up without touching this
file. The modules listed in ``MUST_HAVE_EXAMPLES`` must keep at least one example each.
"""
from __future__ import annotations

import doctest
import importlib
import pkgutil
import sys

import pytest

import conv3d

SKIP = {"conv3d.__main__": "running it starts the command line"}
MUST_HAVE_EXAMPLES = ["conv3d.core.shapes", "conv3d.core.tensor", "conv3d.core.gradcheck",
                      "conv3d.core.dlpack", "conv3d.ops.conv", "conv3d.ops.pool",
                      "conv3d.interop.torch_layout"]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules():
    names = ["conv3d"] + [m.name for m in pkgutil.walk_packages(conv3d.__path__, "conv3d.")]
    return sorted(n for n in names if n not in SKIP)


def _examples(name):
    try:
        importlib.import_module(name)
    except ImportError as exc:  # an optional dependency of that module is missing
        pytest.skip(f"{name} cannot be imported here: {exc}")
    module = sys.modules[name]  # not getattr: a package attribute may shadow the submodule
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [t for t in finder.find(module, name) if t.examples and
            (t.filename or "").endswith(".py")]


MODULES = _modules()


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    tests = _examples(name)
    if not tests:
        if name in MUST_HAVE_EXAMPLES:
            pytest.fail(f"{name} lost its docstring examples")
        return
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    failures = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        runner.run(test, out=failures.append)
    assert runner.failures == 0, "".join(failures)


def test_the_modules_that_must_have_examples_exist():
    missing = [m for m in MUST_HAVE_EXAMPLES if m not in MODULES]
    assert not missing, f"modules not found: {missing}"
