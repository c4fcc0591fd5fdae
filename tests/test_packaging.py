"""What `pip install .` ships: every subpackage, the CUDA sources and the worked example."""
import json
from importlib import resources
from pathlib import Path

import conv3d

ROOT = Path(conv3d.__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared" / "worked-examples" / "cube4x4x4.json"


def test_every_python_folder_is_a_package():
    # setup.py lists packages with find_packages, which skips folders without __init__.py:
    # such a folder would be missing from a non-editable install.
    missing = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_dir()
               and p.name != "__pycache__" and any(p.glob("*.py")) and not (p / "__init__.py").exists()]
    assert missing == []


def test_kernel_sources_are_package_data():
    names = [p.name for p in resources.files("conv3d.kernels").iterdir()]
    assert any(n.endswith(".cu") for n in names), names


def test_packaged_cube_is_the_shared_one():
    packaged = json.loads(resources.files("conv3d").joinpath("data/cube4x4x4.json").read_text())
    if SHARED.exists():  # ../shared sits beside the checkout in development and CI
        assert packaged == json.loads(SHARED.read_text())
    assert len(packaged["input"]) == 4 and len(packaged["filter"]) == 3


def test_teach_extra_serves_the_notebooks_and_what_they_import():
    """`pip install -e ".[teach]"` (the instructor guide's command) brings a notebook server and
    every third-party module that examples/notebooks/*.py imports."""
    import ast
    import importlib.metadata as md
    import re
    import sys

    import pytest
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
    repo = ROOT.parent
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]

    def dists(reqs):  # distribution names, following conv3d[...] self-references
        out = set()
        for req in reqs:
            name = re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower()
            if name == "conv3d":
                for extra in re.search(r"\[(.*)\]", req).group(1).split(","):
                    out |= dists(extras[extra.strip()])
            else:
                out.add(name.replace("_", "-"))
        return out

    teach = dists(extras["teach"]) | dists(project["dependencies"])
    assert teach & {"notebook", "jupyterlab"}, "no notebook server in the teach extra"
    assert "[teach]" in (repo / "docs" / "instructor-guide.md").read_text()

    imported = set()
    for path in (repo / "examples" / "notebooks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"conv3d"}
    assert third_party, "found no imports in the notebooks"
    provider = md.packages_distributions()  # module -> the installed distributions providing it
    for module in sorted(third_party):
        names = {d.lower().replace("_", "-") for d in provider.get(module, [module])}
        assert names & teach, f"the notebooks import {module}, which the teach extra lacks"
