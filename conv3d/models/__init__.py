"""The networks of the 3D-CNN literature, built from ``conv3d.nn`` with PyTorch's parameter names:
the video classifiers and a 3D U-Net for volumetric segmentation (``unet3d``).

Every builder takes ``num_classes`` and ``weights`` (a PyTorch state-dict file, a ``.npz`` or a
dict of arrays, loaded strictly; nothing is downloaded). ``get_model(name, **kwargs)`` builds any
of them by name and ``list_models()`` lists the names.

This package sits above ``conv3d.interop`` (it loads PyTorch-layout weights) and below the
teaching tools and the CLI.
"""
from ._registry import get_model, list_models, register_model
from .c3d import C3D, c3d
from .i3d import BasicBlock3d, I3DResNet, i3d_resnet18, inflate_state_dict
from .p3d import P3D, P3DBottleneck, p3d, p3d199
from .s3d import S3D, s3d
from .unet3d import UNet3D, unet3d
from .video_resnet import VideoResNet, mc3_18, r2plus1d_18, r3d_18

__all__ = ["get_model", "list_models", "register_model", "VideoResNet", "r3d_18", "mc3_18",
           "r2plus1d_18", "S3D", "s3d", "C3D", "c3d", "P3D", "P3DBottleneck", "p3d", "p3d199",
           "I3DResNet", "BasicBlock3d", "i3d_resnet18", "inflate_state_dict", "UNet3D",
           "unet3d"]
