"""A C3D-like layer (N=4, C=64, 16x56x56 -> K=128, 3x3x3, padding 1) under the
default 256 MiB workspace limit, in a fresh subprocess whose peak RSS is measured; once with the
strategy 'auto' chooses for it ('im2col-planes') and once with plain 'im2col'.

The full shape, not a scaled one: its whole im2col matrix would be 1.32 GiB, so the test fails
if the planner ever lets a chunk grow past the limit. About 20 s of CPU for the two runs, so
marked slow (not in the default run; `-m slow` runs it).
The subprocess first runs every op once on a tiny input (so numba's compiled kernels and
OpenBLAS's buffers are loaded), allocates x, w and gy, then records its peak RSS. After the three
convolution calls the peak may have grown only by the outputs (y, gx, gw) plus the limit (and a
small allowance for the allocator and thread stacks). Then it checks the results on slices
against the readable reference path (conv3d/ops/cpu_reference.py) and, for the weight gradient,
against float64 products of two taps computed independently.
"""
import json
import subprocess
import sys
import textwrap

import pytest

resource = pytest.importorskip("resource")  # getrusage: POSIX only

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(r"""
    import json, resource, numpy as np
    import conv3d
    from conv3d.ops import cpu_reference as ref
    from conv3d.ops import fast
    from conv3d.ops.fast import provider, peak_workspace, reset_peak_workspace, use_strategy

    def peak_mib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB

    one, pad = (1, 1, 1), ((1, 1),) * 3
    with use_strategy(STRATEGY):
        t = np.ones((1, 2, 3, 4, 4), np.float32), np.ones((3, 2, 3, 3, 3), np.float32)
        g = provider.conv3d_forward(t[0], t[1], None, one, pad, one, 1)
        provider.conv3d_backward(g, t[0], t[1], one, pad, one, 1)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 64, 16, 56, 56), dtype=np.float32)
    w = rng.standard_normal((128, 64, 3, 3, 3), dtype=np.float32) / 40
    b = rng.standard_normal(128, dtype=np.float32)
    gy = rng.standard_normal((4, 128, 16, 56, 56), dtype=np.float32)
    base = peak_mib()
    reset_peak_workspace()
    with use_strategy(STRATEGY):   # pinned, so that a change of the 'auto' rule cannot hide one
        y = provider.conv3d_forward(x, w, b, one, pad, one, 1)
        gx, gw = provider.conv3d_backward(gy, x, w, one, pad, one, 1)
    grown = peak_mib() - base
    out = {"strategy": fast.last_choice["forward"], "base_mib": base, "grown_mib": grown,
           "outputs_mib": (y.nbytes + gx.nbytes + gw.nbytes) / 2**20,
           "limit_mib": conv3d.get_workspace_limit() / 2**20,
           "peak_workspace_mib": peak_workspace() / 2**20, "errors": {}}

    def err(a, r):
        return float(np.max(np.abs(a - r)) / (np.max(np.abs(r)) + 1e-30))

    # forward and input gradient on depth slices: first planes, middle, last planes
    for n, d0, d1, pd in ((0, 0, 3, (1, 0)), (3, 6, 10, (0, 0)), (1, 13, 16, (0, 1))):
        sub = ((pd,) + ((1, 1), (1, 1)))
        y_ref = ref.conv3d_forward(x[n:n + 1, :, d0:d1], w, b, one, sub, one, 1)
        od0 = d0 - pd[0] + 1  # y_sub[j] reads x[d0 + j - pd_lo + kd], y[od] reads x[od - 1 + kd]
        out["errors"][f"y[{n}, :, {od0}:{od0 + 2}]"] = err(y[n:n + 1, :, od0:od0 + 2], y_ref)
    gy_sub = gy[2:3, :, 0:3]  # output planes 0..2 come from input planes 0..3 padded (1, 0)
    gx_ref = ref.conv3d_backward_input(gy_sub, w, (1, 64, 4, 56, 56), one,
                                       ((1, 0), (1, 1), (1, 1)), one, 1)
    out["errors"]["gx[2, :, 0:2]"] = err(gx[2:3, :, 0:2], gx_ref[:, :, 0:2])

    # weight gradient, two taps in float64: the centre tap (no shift) and the corner (0, 0, 0)
    g64, x64 = gy.astype(np.float64), x.astype(np.float64)
    centre = np.einsum("nkdhw,ncdhw->kc", g64, x64, optimize=True)
    corner = np.einsum("nkdhw,ncdhw->kc", g64[:, :, 1:, 1:, 1:], x64[:, :, :-1, :-1, :-1],
                       optimize=True)
    out["errors"]["gw[:, :, 1, 1, 1]"] = err(gw[:, :, 1, 1, 1], centre)
    out["errors"]["gw[:, :, 0, 0, 0]"] = err(gw[:, :, 0, 0, 0], corner)
    print(json.dumps(out))
""")


@pytest.mark.parametrize("strategy", ["im2col-planes", "im2col"])  # 'auto' picks the first
def test_c3d_layer_stays_under_the_256_mib_workspace_limit(strategy):
    script = f"STRATEGY = {strategy!r}\n" + SCRIPT
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["strategy"] == strategy
    assert res["limit_mib"] == 256
    assert 0 < res["peak_workspace_mib"] <= res["limit_mib"]
    allowance = 32  # MiB: allocator slack, thread stacks, small temporaries
    assert res["grown_mib"] <= res["outputs_mib"] + res["limit_mib"] + allowance, res
    for where, e in res["errors"].items():
        assert e < 1e-4, (where, e)
