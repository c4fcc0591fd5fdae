"""The teaching notebooks (examples/notebooks/*.py, jupytext percent format) execute top to bottom.

Each notebook asserts its own numbers against independent references (by-hand loops, SciPy, the
engine), so a notebook that runs is a notebook whose claims still hold. Executed with jupytext +
nbclient on the python3 kernel (ipykernel); skipped with the reason if those are missing.
"""
from __future__ import annotations

from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "examples" / "notebooks").glob("*.py"))


def _kernel_name() -> str:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:  # ipykernel ships the spec; register it for this user if it is not found
        from ipykernel.kernelspec import install
        install(user=True)
    return "python3"


def test_there_are_five_notebooks():
    names = [p.stem for p in NOTEBOOKS]
    assert len(names) == 5, names


@pytest.mark.slow  # a kernel per notebook, 2 to 10 s each: not in the default run
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path):
    nb = jupytext.read(path)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name=_kernel_name(),
                                     resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    # every code cell ran and produced its outputs in order
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    # a notebook that draws (``%matplotlib inline``) must show its figures as images
    if "%matplotlib inline" in path.read_text():
        assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))
