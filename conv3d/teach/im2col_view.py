"""The im2col view: a convolution is one matrix product once the windows are laid out as columns.

``vol2col`` copies every receptive field into one column of a matrix ``cols``:

* rows are labelled ``(c, kd, kh, kw)``: C·kD·kH·kW of them, one per weight;
* columns are labelled ``(n, od, oh, ow)``: N·OD·OH·OW of them, one per output voxel.

Then ``Y = W_mat @ cols`` with ``W_mat = w.reshape(K, C·kD·kH·kW)`` gives every output at once
(``Y`` is (K, N·OD·OH·OW), reshaped to (N, K, OD, OH, OW)). The price is memory: each input voxel
is copied once per window that covers it, about kD·kH·kW times for stride 1.

The columns are built here Chainer-style, one strided slice per kernel offset, on purpose
independent of ``conv3d.ops.im2col`` so that the tests can check one against the other.
"""
from __future__ import annotations

import itertools

import numpy as np

from .problem import ConvProblem, fmt
from .report import Report

MAX_ROWS, MAX_COLS = 64, 16


def column_matrix(pr: ConvProblem) -> np.ndarray:
    """``cols`` of shape (C·kD·kH·kW, N·OD·OH·OW), row (c, kd, kh, kw), column (n, od, oh, ow)."""
    xp = pr.padded_input()
    N, C = pr.x.shape[:2]
    kD, kH, kW = pr.kernel
    OD, OH, OW = pr.out_size
    (sd, sh, sw), (dd, dh, dw) = pr.stride, pr.dilation
    cols = np.empty((C, kD, kH, kW, N, OD, OH, OW), dtype=pr.x.dtype)
    for kd, kh, kw in itertools.product(range(kD), range(kH), range(kW)):
        d0, h0, w0 = kd * dd, kh * dh, kw * dw
        patch = xp[:, :, d0:d0 + sd * (OD - 1) + 1:sd, h0:h0 + sh * (OH - 1) + 1:sh,
                   w0:w0 + sw * (OW - 1) + 1:sw]  # (N, C, OD, OH, OW): tap (kd, kh, kw) everywhere
        cols[:, kd, kh, kw] = patch.transpose(1, 0, 2, 3, 4)
    return cols.reshape(C * kD * kH * kW, N * OD * OH * OW)


def memory_line(N, C, size, K, kernel, stride=(1, 1, 1), padding=(0, 0, 0), itemsize=4) -> dict:
    """Sizes of the input, the column matrix and the output for one layer (bytes)."""
    from ..core.shapes import conv_output_size  # noqa: PLC0415
    out = [conv_output_size(i, k, s, p, p) for i, k, s, p in zip(size, kernel, stride, padding)]
    rows = C * int(np.prod(kernel))
    ncols = N * int(np.prod(out))
    return dict(out=tuple(out), rows=rows, cols=ncols, input_bytes=N * C * int(np.prod(size)) * itemsize,
                cols_bytes=rows * ncols * itemsize, output_bytes=N * K * int(np.prod(out)) * itemsize)


def _mib(b: int) -> str:
    return f"{b / 2**20:.1f} MiB" if b >= 2**20 else f"{b} bytes"


def explain_im2col(pr: ConvProblem) -> Report:
    N, C = pr.x.shape[:2]
    K = pr.w.shape[0]
    kD, kH, kW = pr.kernel
    OD, OH, OW = pr.out_size
    cols = column_matrix(pr)
    wmat = pr.w.reshape(K, -1)
    y = wmat @ cols + pr.b[:, None]
    r = Report()
    r.heading("im2col: the convolution as one matrix product (GEMM)")
    r.text(f"INPUT x {tuple(pr.x.shape)} (N, C, D, H, W); WEIGHTS w {tuple(pr.w.shape)} "
           f"(K, C, kD, kH, kW); OUTPUT y {(N, K, OD, OH, OW)}; data: {pr.source}")
    r.text(f"Column matrix cols: {cols.shape[0]} rows = C·kD·kH·kW = {C}·{kD}·{kH}·{kW}, one per "
           f"weight, labelled (c, kd, kh, kw); {cols.shape[1]} columns = N·OD·OH·OW = "
           f"{N}·{OD}·{OH}·{OW}, one per output voxel, labelled (n, od, oh, ow). Column j holds "
           f"the receptive field of output voxel j, flattened in the same order as the weights.")
    row_labels = list(itertools.product(range(C), range(kD), range(kH), range(kW)))
    col_labels = list(itertools.product(range(N), range(OD), range(OH), range(OW)))
    nr, nc = min(len(row_labels), MAX_ROWS), min(len(col_labels), MAX_COLS)
    wk = min(K, 3)
    header = ["row (c,kd,kh,kw)"] + [f"W[{k}]" for k in range(wk)] + \
        ["(" + ",".join(map(str, col_labels[j])) + ")" for j in range(nc)]
    rows = []
    for i in range(nr):
        rows.append([str(row_labels[i])] + [fmt(wmat[k, i]) for k in range(wk)]
                    + [fmt(cols[i, j]) for j in range(nc)])
    cut = [f"the first {a} of {b} {what}" for a, b, what in
           ((nr, cols.shape[0], "rows"), (nc, cols.shape[1], "columns")) if a < b]
    shown = f" (showing {' and '.join(cut)})" if cut else ""
    r.table("The column matrix cols (columns labelled (n,od,oh,ow)), with the weights W[k] = "
            "W_mat[k] beside it" + shown, header, rows)
    r.heading("The GEMM", 2)
    r.text(f"W_mat = w.reshape(K, C·kD·kH·kW) has shape ({K}, {cols.shape[0]}). "
           f"Y = W_mat @ cols + b has shape ({K}, {cols.shape[1]}): Y[k, j] = Σ_r W_mat[k, r] × "
           f"cols[r, j], one dot product per output voxel.")
    yrows = [[f"Y[{k}]"] + [fmt(y[k, j]) for j in range(nc)] for k in range(K)]
    r.table("OUTPUT Y = W_mat @ cols + b, columns (n, od, oh, ow)",
            ["k"] + ["(" + ",".join(map(str, col_labels[j])) + ")" for j in range(nc)], yrows)
    r.text(f"Reshape Y ({K}, N·OD·OH·OW) to (K, N, OD, OH, OW) and swap the first two axes: "
           f"y = Y.reshape({K}, {N}, {OD}, {OH}, {OW}).transpose(1, 0, 2, 3, 4).")
    r.code("cols = vol2col(x)  # (C*kD*kH*kW, N*OD*OH*OW)\n"
           "y = (w.reshape(K, -1) @ cols + b[:, None]).reshape(K, N, OD, OH, OW).transpose(1, 0, 2, 3, 4)")
    r.heading("The memory it costs", 2)
    isz = np.dtype(np.float32).itemsize
    cols_bytes = cols.size * isz
    in_bytes = pr.x.size * isz
    r.text(f"This example at float32: input {pr.x.size} values = {_mib(in_bytes)}; cols "
           f"{cols.shape[0]} × {cols.shape[1]} = {cols.size} values = {_mib(cols_bytes)}; that is "
           f"{cols.size / pr.x.size:.2f}× the input (each input voxel is copied once per window "
           f"that covers it).")
    big = memory_line(1, 64, (16, 56, 56), 128, (3, 3, 3), (1, 1, 1), (1, 1, 1), isz)
    r.text(f"A C3D-sized layer (N=1, C=64, 16×56×56, 3×3×3 kernel, padding 1): cols is "
           f"{big['rows']} × {big['cols']} = {_mib(big['cols_bytes'])} against an input of "
           f"{_mib(big['input_bytes'])} ({big['cols_bytes'] / big['input_bytes']:.0f}× the input). "
           f"That is why engines build the columns in chunks, or skip im2col (implicit GEMM).")
    return r
