"""``conv3d.onnx.export(model, input_shape, path)``: write a model as an ONNX file.

A short name for ``conv3d.interop.onnx_export``; see there for the layer-to-operator table.
Needs the optional extra ``pip install 'conv3d[interop]'``.
"""
from .interop.onnx_export import OPSET, export, to_onnx

__all__ = ["export", "to_onnx", "OPSET"]
