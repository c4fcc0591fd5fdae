"""The layer and whole-network suites of ``conv3d bench``: the committed layer table, the
agreement check of every row, the summary's ratios, and the model rows (skipped until
conv3d.models has the networks; the machinery checked on a tiny network and its torch twin)."""
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from conv3d.bench import harness, layers, models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_layer_table_covers_the_five_networks():
    table = layers.load_table()
    users = {u.split()[0] for row in table["layers"] for u in row["used_by"]}
    assert users == {"r3d_18", "mc3_18", "r2plus1d_18", "s3d", "unet3d"}
    keys = [tuple(sorted((k, str(v)) for k, v in r.items() if k not in ("used_by", "name")))
            for r in table["layers"]]
    assert len(keys) == len(set(keys))                      # distinct rows
    for row in table["layers"]:
        extra = len(row["used_by"]) - 1
        assert row["name"] == row["used_by"][0] + (f" (+{extra} more)" if extra else "")
    # torchvision's BasicStem: Conv3d(3, 64, (3, 7, 7), stride (1, 2, 2), padding (1, 3, 3))
    stem = next(r for r in table["layers"] if "r3d_18 stem.0" in r["used_by"])
    assert (stem["x"], stem["w"], stem["stride"], stem["padding"], stem["bias"]) == (
        [1, 3, 16, 112, 112], [64, 3, 3, 7, 7], [1, 2, 2], [1, 3, 3], False)
    assert "mc3_18 stem.0" in stem["used_by"]               # mc3_18 has the same stem
    assert layers.describe(stem) == "conv 3->64 k3x7x7 s1x2x2 p1x3x3 on 16x112x112"
    # mc3_18 keeps 16 frames to the end (3D convs only in its stem): a 16x7x7 global mean
    pool = next(r for r in table["layers"] if "mc3_18 avgpool" in r["used_by"])
    assert layers.describe(pool) == "adaptive avg_pool (1,1,1) k16x7x7 s16x7x7 p0x0x0 on 512x16x7x7"
    # the U-Net's first conv sees the 1-channel 96^3 volume; its transposed convs are left out
    first = next(r for r in table["layers"] if "unet3d down.0.0" in r["used_by"])
    assert first["x"] == [1, 1, 96, 96, 96] and first["w"] == [32, 1, 3, 3, 3]
    assert sum("ConvTranspose3d" in r["reason"] for r in table["left_out"]) == 4


def test_select_batches_and_filter():
    table = layers.load_table()
    chosen = layers.select(table, name_filter="unet3d down.0.0")
    assert [(r["name"], b) for r, b in chosen] == [("unet3d down.0.0", 1)]   # U-Net: batch 1
    stem = layers.select(table, name_filter="r3d_18 stem.0")
    assert [b for _, b in stem] == [1, 8]
    assert [b for _, b in layers.select(table, [1], "r3d_18 stem.0")] == [1]
    assert len(layers.select(table, max_layers=2)) == 4
    both = layers.select(table, name_filter="unet3d down.0.0, r3d_18 stem.0")
    assert [(r["name"], b) for r, b in both] == [("r3d_18 stem.0 (+1 more)", 1),
                                                 ("r3d_18 stem.0 (+1 more)", 8),
                                                 ("unet3d down.0.0", 1)]


def _tiny(op, **extra):
    base = dict(name=f"tiny {op}", used_by=[f"tiny {op}"])
    if op == "conv":
        return dict(base, op="conv", x=[1, 3, 4, 5, 6], w=[4, 3, 3, 1, 3], stride=[1, 2, 1],
                    padding=[1, 0, 1], dilation=[1, 1, 1], groups=1, bias=True, **extra)
    return dict(base, op=op, x=[1, 2, 4, 5, 6], kernel=[2, 3, 3], stride=[1, 2, 2],
                padding=[1, 1, 0], ceil_mode=True, dilation=[1, 1, 1], count_include_pad=False,
                **extra)


@pytest.mark.parametrize("op", ["conv", "max_pool", "avg_pool"])
@pytest.mark.parametrize("backward", [False, True])
def test_layer_rows_are_checked_against_torch(op, backward):
    pytest.importorskip("torch")
    case = layers.layer_case(_tiny(op), 2, backward)
    rows = {r["impl"]: r for r in harness.run_case(case, 1, log=lambda *a: None, pause=0.0)}
    ours = rows[layers.OURS]
    assert ours["status"] == "ok" and ours["checked"] and ours["error"] <= case.rtol
    assert ours["best_ratio"] > 0 and rows[layers.PEER]["best_ms"] > 0
    assert case.reference == layers.PEER   # torch's output is what conv3d was checked against


def test_a_wrong_layer_is_a_mismatch_and_not_timed():
    """The check can fail: conv3d run with the wrong padding disagrees with torch."""
    pytest.importorskip("torch")
    layer = _tiny("conv")
    case = layers.layer_case(layer, 1, False)
    # padding (1, 0, 0) and stride (1, 1, 2) give the same output shape, 4x3x3, other numbers
    case.impls[0].run = layers._step(None, layers.F.conv3d, layers._arrays(layer, 1),
                                     dict(layers._kwargs(layer), padding=(1, 0, 0),
                                          stride=(1, 1, 2)), False)
    rows = {r["impl"]: r for r in harness.run_case(case, 1, log=lambda *a: None, pause=0.0)}
    assert rows[layers.OURS]["status"].startswith("MISMATCH") and rows[layers.OURS]["ms"] is None


def test_summary_lists_ratios_and_geometric_means():
    def row(bench, shape, impl, best, ratio):
        return dict(bench=bench, shape=shape, impl=impl, best_ms=best, best_ratio=ratio,
                    rounds=2, status="ok", detail=f"conv {shape[0]}")
    fwd, both = layers.BENCH[False], layers.BENCH[True]
    rows = [row(fwd, "a N=1", layers.PEER, 2.0, 1.0), row(fwd, "a N=1", layers.OURS, 4.0, 2.0),
            row(fwd, "b N=1", layers.PEER, 1.0, 1.0), row(fwd, "b N=1", layers.OURS, 0.5, 0.5),
            row(both, "a N=1", layers.PEER, 3.0, 1.0), row(both, "a N=1", layers.OURS, 9.0, 3.0)]
    text = layers.summary(rows)
    assert "| a N=1 | conv a | 4.00 | 2.00 | 2.00x | 9.00 | 3.00 | 3.00x | 2 |" in text
    assert "| b N=1 | conv b | 0.50 | 1.00 | 0.50x | - | - | - | 2 |" in text
    # geometric means by hand: sqrt(2 * 0.5) = 1 for forward, 3 for forward+backward
    assert f"| {fwd} | 2 | 1.00x |" in text and f"| {both} | 1 | 3.00x |" in text


def test_budget_caps_rounds_but_keeps_three_of_a_cheap_case_and_one_of_any(monkeypatch):
    calls = []
    case = harness.Case("b", "s", [harness.Impl("x", lambda: calls.append(1) or [np.zeros(1)])])
    rows = harness.run_case(case, 50, log=lambda *a: None, pause=0.01, budget=0.0)
    assert rows[0]["rounds"] == harness.MIN_ROUNDS == 3  # a cheap round: never below three
    rows = harness.run_case(case, 2, log=lambda *a: None, pause=0.01, budget=0.0)
    assert rows[0]["rounds"] == 2                        # ... nor above what was asked
    monkeypatch.setattr(harness, "CHEAP_ROUND", 0.0)     # every round now counts as costly
    rows = harness.run_case(case, 50, log=lambda *a: None, pause=0.01, budget=0.0)
    assert rows[0]["rounds"] == 1
    rows = harness.run_case(case, 3, log=lambda *a: None, pause=0.01, budget=100.0)
    assert rows[0]["rounds"] == 3


def test_short_calls_get_up_to_three_untimed_calls_before_each_timed_one(monkeypatch):
    """A call the other library's threads delayed must not be the timed one (harness docstring):
    a fast call gets WARM_CALLS untimed calls per round, a 30 ms call one, a long call none;
    a check call below WARM_LIMIT is followed by one more warm-up call."""
    monkeypatch.setattr(harness, "LONG_CALL", 0.06)
    monkeypatch.setattr(harness, "WARM_LIMIT", 0.1)

    def counted(seconds):
        calls = []

        def run():
            calls.append(1)
            time.sleep(seconds)
            return [np.zeros(1)]
        harness.run_case(harness.Case("b", "s", [harness.Impl("x", run)]), 2,
                         log=lambda *a: None, pause=0.0)
        return len(calls)
    # check + warm-up (below WARM_LIMIT), then per round the untimed calls and the timed one
    assert counted(0.0) == 2 + 2 * (harness.WARM_CALLS + 1) == 10
    assert counted(0.03) == 2 + 2 * (1 + 1)
    assert counted(0.07) == 2 + 2 * 1   # long: no untimed call, but a second warm-up
    assert counted(0.12) == 1 + 2 * 1   # its check is warm-up enough


def test_rows_with_a_device_timer_are_timed_by_it_not_by_the_wall_clock():
    """GPU rows report the seconds their CUDA events measured; the harness must use those."""
    seconds = iter([0.004, 0.002, 0.006])
    case = harness.Case("b", "s", [harness.Impl("gpu", lambda: [np.zeros(1)],
                                                device_timer=lambda: next(seconds))])
    rows = harness.run_case(case, 3, log=lambda *a: None, pause=0.0)
    assert rows[0]["rounds"] == 3
    assert rows[0]["ms"] == pytest.approx(4.0) and rows[0]["best_ms"] == pytest.approx(2.0)


def test_model_rows_skip_until_conv3d_has_the_network(monkeypatch):
    from conv3d import models as conv3d_models
    monkeypatch.setattr(conv3d_models, "list_models", lambda: [])
    cases = models.model_cases(batches=(1,), train_batch=1)
    assert [c.bench for c in cases] == ["r3d_18 inference", "r3d_18 training step",
                                        "r2plus1d_18 inference", "r2plus1d_18 training step"]
    for case in cases:
        rows = harness.run_case(case, 1, log=lambda *a: None)
        name = case.bench.split()[0]
        assert {r["status"] for r in rows} == {f"skipped: conv3d.models has no {name}"}


def _tiny_network(seed):
    # no bias before BatchNorm, as in torchvision's networks: BatchNorm cancels it, and the
    # gradient of such a bias is zero up to rounding, which no relative tolerance can compare
    from conv3d import nn
    return nn.Sequential(nn.Conv3d(3, 4, 3, padding=1, bias=False, rng=seed), nn.BatchNorm3d(4),
                         nn.ReLU(),
                         nn.Conv3d(4, 4, (1, 3, 3), padding=(0, 1, 1), rng=seed + 1),
                         nn.GlobalAvgPool3d(), nn.Linear(4, 5, rng=seed + 2))


def test_network_rows_on_a_tiny_twin():
    """A conv3d network and a torch network with other random weights: the suite loads the
    torch weights into conv3d's, and then inference and the training step agree."""
    torch = pytest.importorskip("torch")
    from conv3d.interop import torch_module
    torch.manual_seed(0)
    cases = models.network_cases("tiny", lambda: _tiny_network(0),
                                 lambda: torch_module(_tiny_network(10)), clip=(3, 4, 6, 6),
                                 classes=5, batches=(1, 3), train_batch=3)
    assert [(c.bench, c.shape) for c in cases] == [
        ("tiny inference", "N=1"), ("tiny inference", "N=3"), ("tiny training step", "N=3")]
    for case in cases:
        rows = {r["impl"]: r for r in harness.run_case(case, 2, log=lambda *a: None, pause=0.0)}
        ours = rows[models.OURS]
        assert ours["status"] == "ok" and ours["checked"], ours
        assert ours["error"] <= (max(case.rtol) if isinstance(case.rtol, list) else case.rtol)
        assert ours["rounds"] == 2 and math.isfinite(ours["ratio"])
    # the training step is checked on float64 twins: an agreement no float32 step could reach
    assert cases[-1].rtol == models.RTOL64 and "float64" in cases[-1].detail
    assert ours["error"] < 1e-10


def test_network_rows_disagree_without_the_weight_transfer(monkeypatch):
    """The check can fail: with the weight loading switched off the twins differ."""
    torch = pytest.importorskip("torch")
    import conv3d.interop
    from conv3d.interop import torch_module
    torch.manual_seed(0)
    monkeypatch.setattr(conv3d.interop, "load_torch_state_dict", lambda model, sd: None)
    case = models.network_cases("tiny", lambda: _tiny_network(0),
                                lambda: torch_module(_tiny_network(10)), clip=(3, 4, 6, 6),
                                classes=5, batches=(2,), train_batch=2)[0]
    rows = {r["impl"]: r for r in harness.run_case(case, 1, log=lambda *a: None, pause=0.0)}
    assert rows[models.OURS]["status"].startswith("MISMATCH")


@pytest.mark.slow
def test_generator_reproduces_the_committed_table(tmp_path):
    """benchmarks/gen_layer_table.py, run again on torchvision's models, writes the committed
    layers.json (about a minute: four networks and the U-Net run once)."""
    pytest.importorskip("torch")
    out = tmp_path / "layers.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gen_layer_table", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and "torchvision is not installed" in proc.stderr:
        pytest.skip("torchvision is not installed")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_text() == open(layers.TABLE).read()


def test_errors_per_array():
    want = [np.array([1.0, 2.0]), np.array([4.0, 0.0])]
    got = [np.array([1.1, 2.0]), np.array([4.004, 0.0])]
    assert harness.errors(got, want) == pytest.approx([0.05, 1e-3])   # by hand: 0.1/2, 0.004/4
    assert harness.errors(got[:1], want) == [pytest.approx(0.05), float("inf")]
    assert harness.agree(got, want) == pytest.approx(0.05)


def test_decoder_suite_lists_a_unets_way_up():
    from conv3d.bench import decoder
    got = [(d["name"], d["x"]) for d in decoder.decoder_layers()]
    # four levels from 512 channels at 6^3 up to 64 at 48^3, three ways up each
    assert len(got) == 12 and got[0] == ("k2s2 512->256 at 6^3", [1, 512, 6, 6, 6])
    assert got[-1] == ("trilinear x2 64 at 48^3", [1, 64, 48, 48, 48])
    k3 = decoder.decoder_layers()[1]
    assert (k3["w"], k3["padding"], k3["output_padding"]) == ([512, 256, 3, 3, 3], 1, 1)


@pytest.mark.parametrize("op", ["conv_transpose", "upsample"])
@pytest.mark.parametrize("backward", [False, True])
def test_decoder_rows_are_checked_against_torch(op, backward):
    pytest.importorskip("torch")
    from conv3d.bench import decoder
    layer = dict(name="tiny", op=op, x=[1, 4, 3, 3, 3], w=[4, 2, 3, 3, 3], stride=2, padding=1,
                 output_padding=1, bias=True)
    case = decoder.decoder_case(layer, 2, backward)
    rows = {r["impl"]: r for r in harness.run_case(case, 1, log=lambda *a: None, pause=0.0)}
    ours = rows[layers.OURS]
    assert ours["status"] == "ok" and ours["checked"] and ours["error"] <= case.rtol
    assert case.reference == layers.PEER


def test_decoder_summary_says_which_targets_are_met():
    from conv3d.bench import decoder
    fwd = decoder.BENCH[False]
    rows = [dict(bench=fwd, shape=s, impl=i, best_ms=ms, best_ratio=r, rounds=1, status="ok",
                 detail="-")
            for s, i, ms, r in [("k2s2 a N=1", layers.OURS, 1.0, 0.4),
                                ("k2s2 a N=1", layers.PEER, 2.5, 1.0),
                                ("trilinear b N=1", layers.OURS, 3.0, 1.5),
                                ("trilinear b N=1", layers.PEER, 2.0, 1.0)]]
    text = decoder.summary(rows)
    # 0.4x meets the 0.5x of a transposed convolution; 1.5x misses the 1.0x of upsampling
    assert "Targets met on 1 of 2 rows." in text and "trilinear b N=1 forward 1.50x" in text


def test_decoder_rows_without_torch_are_skipped_not_timed_unchecked(monkeypatch):
    from conv3d.bench import decoder
    monkeypatch.setattr(decoder, "torch_module", lambda: None)
    case = decoder.decoder_case(decoder.decoder_layers()[0], 1, False)
    rows = harness.run_case(case, 1, log=lambda *a: None, pause=0.0)
    assert [r["status"].startswith("skipped: torch not installed") for r in rows] == [True, True]
    assert all(r["ms"] is None for r in rows)


def test_decoder_summary_says_when_a_target_is_below_the_gemm_floor():
    from conv3d.bench import decoder
    fwd = decoder.BENCH[False]

    def row(impl, best_ms, ms, ratio, gflops, is_gemm=False):
        return dict(bench=fwd, shape="k3s2 a N=1", impl=impl, best_ms=best_ms, ms=ms,
                    best_ratio=ratio, gflops=gflops, is_gemm=is_gemm, rounds=1, status="ok",
                    detail="-")
    # ours: 20 GFLOP/s for 10 ms = 0.2 GFLOP; at the GEMM's 100 GFLOP/s that is 2 ms, while
    # 0.5 x PyTorch's 3 ms = 1.5 ms: the target asks for less than the GEMM takes
    rows = [row(layers.OURS, 9.0, 10.0, 3.0, 20.0), row(layers.PEER, 3.0, 3.0, 1.0, 66.0),
            row("float32 GEMM", 1.9, 2.0, None, 100.0, is_gemm=True)]
    text = decoder.summary(rows)
    assert "k3s2 a N=1 forward 3.00x (target 1.50 ms < GEMM floor 2.00 ms)" in text
    rows[1].update(best_ms=30.0)  # a 15 ms target is above the floor: nothing added
    assert "forward 3.00x." in decoder.summary(rows)
