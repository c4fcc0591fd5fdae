"""examples/ddp_voxel_digits.py (issue 20): two gloo processes train the torch_module of a conv3d
model with DistributedDataParallel, and the first step's averaged gradients equal conv3d's own
gradient of the mean loss over the same global batch (1e-5)."""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "ddp_voxel_digits.py"
PAGE = ROOT / "docs" / "outgrowing.md"

torch = pytest.importorskip("torch", reason="torch is not installed: pip install conv3d[torch]")


def _example():
    spec = importlib.util.spec_from_file_location("ddp_voxel_digits", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _needs_gloo():
    import torch.distributed as dist
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with the gloo backend is not available in this torch build")
    pytest.importorskip("sklearn", reason="voxel digits need scikit-learn: pip install conv3d[data]")


def _page_run():
    """The command docs/outgrowing.md shows for the example, and the output it shows."""
    found = re.search(r"```bash\n(python examples/ddp_voxel_digits\.py[^\n]*)\n```\s*"
                      r"```text\n(.*?)```", PAGE.read_text(), re.S)
    assert found, f"{PAGE} shows no command for examples/ddp_voxel_digits.py"
    return found.group(1).split(), found.group(2)


def _shape(text: str) -> list:
    """The lines of an output with each number replaced by #: what must not change between
    machines (the numbers are checked on their own)."""
    return [re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "#", line) for line in text.strip().splitlines()]


@pytest.mark.slow  # two processes that each import torch: about ten seconds on a loaded machine
def test_the_command_of_the_docs_page_reproduces_conv3d_gradients():
    _needs_gloo()
    command, shown = _page_run()
    run = subprocess.run([sys.executable] + command[1:], cwd=ROOT, capture_output=True,
                         text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    assert _shape(run.stdout) == _shape(shown), run.stdout  # the page shows what it prints
    found = re.search(r"first-step gradients, DDP on 2 ranks vs conv3d on the global batch: "
                      r"(\d+) tensors, largest difference (\S+) of .*: match", run.stdout)
    assert found, run.stdout
    assert int(found.group(1)) == 10  # 2 convs, 2 group norms, 1 linear: weight and bias each
    assert float(found.group(2)) <= 1e-5
    assert "weights are identical: True" in run.stdout


def test_the_gradient_check_fails_on_a_wrong_reference(capsys):
    """The check the script exits with can fail: the gradient of the mean over *one* shard is
    not the global batch's, and check_gradients says MISMATCH and raises."""
    pytest.importorskip("sklearn", reason="voxel digits need scikit-learn: pip install conv3d[data]")
    from conv3d.datasets import voxel_digits
    from conv3d.interop import torch_module

    example = _example()
    (x, y), _ = voxel_digits(n_train=8, n_test=1, seed=0)
    whole = example.conv3d_gradients(example.build_model(), x, y)
    half = example.conv3d_gradients(example.build_model(), x[:4], y[:4])
    module = torch_module(example.build_model())
    loss = torch.nn.functional.cross_entropy(module(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()  # one process, the whole batch: torch's gradient, to compare with conv3d's
    example.check_gradients(module, whole)
    assert "match" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="differ"):
        example.check_gradients(module, half)
    assert "MISMATCH" in capsys.readouterr().out
    # and the two halves' mean gradient is the whole batch's: the averaging DDP relies on
    other = example.conv3d_gradients(example.build_model(), x[4:], y[4:])
    for name in whole:
        np.testing.assert_allclose((half[name] + other[name]) / 2, whole[name], rtol=1e-4,
                                   atol=1e-6 * np.abs(whole[name]).max())
