"""Only here to list the packages: kernels/ sits at the repository root (the requested layout) and is
installed as the package ``conv3d.kernels`` (see package-dir in pyproject.toml), which a plain
``packages.find`` cannot express. Everything else is configured in pyproject.toml."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["conv3d", "conv3d.*"]) + ["conv3d.kernels"])
