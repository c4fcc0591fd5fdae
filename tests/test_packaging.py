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
