"""``import conv3d.functional as F``: every differentiable op, with torch.nn.functional's signatures.

Each name here is a thin wrapper around a ``Function`` subclass in ``conv3d.ops``, where its
forward and backward sit side by side.
"""
from .ops.activation import log_softmax, relu, softmax
from .ops.adaptive_pool import adaptive_avg_pool3d, adaptive_max_pool3d
from .ops.conv import conv3d
from .ops.conv_transpose import conv_transpose3d
from .ops.dropout import dropout
from .ops.linear import linear
from .ops.loss import binary_cross_entropy_with_logits, cross_entropy, dice_loss
from .ops.normalization import batch_norm, group_norm, instance_norm, layer_norm
from .ops.pad import pad
from .ops.pool import avg_pool3d, max_pool3d, max_unpool3d
from .ops.resample import interpolate
from .ops.shape import cat, chunk, flatten, split, stack

__all__ = ["conv3d", "conv_transpose3d", "max_pool3d", "avg_pool3d", "max_unpool3d",
           "adaptive_avg_pool3d", "adaptive_max_pool3d", "interpolate", "linear", "relu",
           "softmax", "log_softmax", "cross_entropy", "binary_cross_entropy_with_logits",
           "dice_loss", "dropout", "batch_norm", "group_norm", "instance_norm", "layer_norm",
           "flatten", "cat", "stack", "split", "chunk", "pad"]
