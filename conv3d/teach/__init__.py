"""Teaching tools: explain, step through, draw and animate 3D convolutions.

The top layer (it may use everything below it). Start with ``conv3d explain --example cube --at
0,0,1`` or ``conv3d.teach.explain.explain_voxel``.
"""
from .explain import explain_voxel, step_through
from .problem import ConvProblem, make_problem

__all__ = ["ConvProblem", "make_problem", "explain_voxel", "step_through"]
