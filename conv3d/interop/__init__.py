"""Interop with the tools users already use: PyTorch weights and ONNX.

* ``conv3d.interop.torch_layout``: a model's state in ``torch.nn``'s names and shapes (NumPy
  arrays), loading one back, and ``torch_module(model)``, the equivalent ``torch.nn`` model.
* ``conv3d.interop.onnx_export`` (also ``conv3d.onnx``): ``export(model, input_shape, path)``,
  checked with ``onnx.checker``; needs the optional extra ``conv3d[interop]``.

Arrays themselves move without copies through DLPack and NumPy's array protocol: see
``conv3d.from_dlpack`` and ``Tensor.__dlpack__`` (``conv3d.core.dlpack``).

This package sits above ``conv3d.nn`` (it reads models) and is never imported by the layers below.
"""
from .torch_layout import load_torch_state_dict, name_map, to_torch_state_dict, torch_module

__all__ = ["to_torch_state_dict", "load_torch_state_dict", "name_map", "torch_module"]
