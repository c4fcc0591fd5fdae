"""``import conv3d.functional as F``: every differentiable op, with torch.nn.functional's signatures.

Each name here is a thin wrapper around a ``Function`` subclass in ``conv3d.ops``, where its
forward and backward sit side by side.
"""
from .ops.activation import log_softmax, relu, softmax
from .ops.adaptive_pool import adaptive_avg_pool3d, adaptive_max_pool3d
from .ops.conv import conv3d
from .ops.dropout import dropout
from .ops.linear import linear
from .ops.loss import cross_entropy
from .ops.normalization import batch_norm
from .ops.pad import pad
from .ops.pool import avg_pool3d, max_pool3d
from .ops.shape import cat, flatten

__all__ = ["conv3d", "max_pool3d", "avg_pool3d", "adaptive_avg_pool3d",
           "adaptive_max_pool3d", "linear", "relu", "softmax", "log_softmax",
           "cross_entropy", "dropout", "batch_norm", "flatten", "cat", "pad"]
