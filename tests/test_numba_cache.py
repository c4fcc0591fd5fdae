"""numba's on-disk cache must serve a second process: the compiled loops (strategy 'direct' and
pooling) cost seconds to compile, and a cache that never hits also grows by one file per run."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("numba")
# slow: its first process compiles every loop from nothing (12-25 s on 2 cores); CI's second
# step runs it
pytestmark = pytest.mark.slow

SCRIPT = """
import numpy as np, conv3d, conv3d.functional as F
x = conv3d.Tensor(np.ones((1, 2, 4, 4, 4), np.float32), requires_grad=True)
F.max_pool3d(x, 2).sum().backward()
w = conv3d.Tensor(np.ones((2, 1, 3, 3, 3), np.float32), requires_grad=True)
F.conv3d(x, w, groups=2).sum().backward()
"""


def _run(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), NUMBA_DEBUG_CACHE="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr


def test_a_second_process_loads_the_compiled_loops_instead_of_compiling_them(tmp_path):
    first = _run(tmp_path)
    assert "data saved" in first            # the first process compiles and stores
    second = _run(tmp_path)
    loaded = [line for line in second.splitlines() if "data loaded" in line]
    for loop in ("max_forward", "forward_loop", "input_loop", "weight_loop"):
        assert any(loop in line for line in loaded), (loop, second)
    assert "data saved" not in second, second
