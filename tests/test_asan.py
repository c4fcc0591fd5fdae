"""AddressSanitizer/UBSan runs of the CUDA emulator, each in a subprocess.

The subprocess is started by conv3d.cuda.emulator.asan_check: LD_PRELOAD of g++'s libasan,
every EmuModule built with -fsanitize=address,undefined, and NVRTC kept out of the process. The
planted-bug tests prove the setup bites; the suite tests prove the emulation tests run clean.

    pytest -m asan                    # all of these
    pytest -m "asan and not slow"     # only the quick ones (planted bugs, one clean kernel)
"""
import sys
from pathlib import Path

import pytest

from conv3d.cuda.emulator import EmuError, asan_check

pytestmark = pytest.mark.asan
ROOT = Path(__file__).resolve().parents[1]

try:
    asan_check.libasan_path()
    REASON = None
except EmuError as exc:
    REASON = str(exc)
if not sys.platform.startswith("linux"):
    REASON = "AddressSanitizer runs are set up for Linux only"


@pytest.fixture(autouse=True)
def _need_asan():
    if REASON:
        pytest.skip(REASON)


# The child process: build oob_read.cu sanitized, launch one kernel, report what it saw.
CHILD = r"""
import sys
import numpy as np
from conv3d.cuda.emulator import EmuModule
mod = EmuModule(open("tests/emu_kernels/oob_read.cu").read(), name="tests/emu_kernels/oob_read.cu")
assert mod.sanitize and mod.runtime.endswith("+asan"), mod.runtime
kernel = sys.argv[1]
if kernel == "shared_overrun":
    mod.get_function(kernel)(1, 32, (np.zeros(32, np.float32),))
else:
    x = np.arange(100, dtype=np.float32)
    y = np.zeros(100, np.float32)
    mod.get_function(kernel)(4, 32, (x, y, np.int32(100)))
    assert (y[:99] == x[1:]).all() and y[99] == 0, y
maps = open("/proc/self/maps").read()
print("nvrtc loaded:", "libnvrtc" in maps, "asan loaded:", "libasan" in maps)
print("CHILD OK")
"""


def run_child(kernel):
    return asan_check.run(["-c", CHILD, kernel], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_asan_runs_a_correct_kernel_cleanly():
    proc = run_child("shift_left_fixed")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CHILD OK" in proc.stdout
    assert "nvrtc loaded: False asan loaded: True" in proc.stdout
    assert "AddressSanitizer" not in proc.stderr and "runtime error" not in proc.stderr


def test_asan_catches_the_planted_out_of_bounds_read():
    proc = run_child("shift_left")
    assert proc.returncode != 0
    assert "CHILD OK" not in proc.stdout
    assert "ERROR: AddressSanitizer: heap-buffer-overflow" in proc.stderr, proc.stderr[-3000:]
    assert "READ of size 4" in proc.stderr
    # the report points at the kernel's own source line: y[i] = x[i + 1]
    lines = (ROOT / "tests/emu_kernels/oob_read.cu").read_text().splitlines()
    line = next(i + 1 for i, l in enumerate(lines) if "y[i] = x[i + 1];" in l)
    assert f"in shift_left tests/emu_kernels/oob_read.cu:{line}" in proc.stderr


def test_ubsan_catches_a_shared_memory_overrun():
    proc = run_child("shared_overrun")
    assert proc.returncode != 0
    assert "CHILD OK" not in proc.stdout
    assert "runtime error: index 32 out of bounds for type 'float [32]'" in proc.stderr, \
        proc.stderr[-3000:]


def run_suite(*files):
    proc = asan_check.run(["-m", "pytest", *files, "-q", "-p", "no:cacheprovider", "-x",
                           "-m", "not asan and not gpu"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500)
    if proc.returncode != 0:
        pytest.fail(f"under ASan:\n{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}", pytrace=False)
    assert " passed" in proc.stdout and " failed" not in proc.stdout
    assert "AddressSanitizer" not in proc.stderr and "runtime error" not in proc.stderr


@pytest.mark.slow
def test_emulator_tests_are_clean_under_asan():
    run_suite("tests/test_emulator.py")


@pytest.mark.slow
def test_cuda_kernel_tests_are_clean_under_asan():
    if not (ROOT / "tests/test_cuda_kernels.py").exists():
        pytest.skip("tests/test_cuda_kernels.py (the emulated kernel tests) is not there")
    run_suite("tests/test_cuda_kernels.py")


@pytest.mark.slow
def test_resize_and_transposed_conv_kernel_tests_are_clean_under_asan():
    run_suite("tests/test_cuda_resize.py")


@pytest.mark.slow
def test_wmma_and_tensor_core_tests_are_clean_under_asan():
    run_suite("tests/test_emulator_wmma.py", "tests/test_cuda_tensor_core.py")
