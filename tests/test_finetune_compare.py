"""examples/finetune_compare.py: the quick run end to end, its equal-parameter claim checked
against conv3d.summary's own count, and the four variants' kernels read off the weights."""
import importlib.util
import re
from pathlib import Path

import pytest

import conv3d

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "finetune_compare.py"


@pytest.fixture(scope="module")
def fc():
    spec = importlib.util.spec_from_file_location("finetune_compare", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table_rows(text):
    """{label: cells} for the Markdown table rows of the report."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 9 and cells[1].isdigit():
            rows[cells[0]] = cells
    return rows


def _summary_params(model, frames, size):
    text = conv3d.summary(model, (3, frames, size, size), print_fn=None)
    return int(re.search(r"Trainable params: ([\d,]+)", text).group(1).replace(",", ""))


def _temporal_kernels(model, prefix):
    """The temporal extents (kD) of the residual-branch conv weights under ``prefix``."""
    return {name: w.shape[2] for name, w in model.state_dict().items()
            if name.startswith(prefix) and name.endswith("weight") and w.ndim == 5
            and "downsample" not in name}


def test_quick_run_reports_equal_parameter_counts(fc, tmp_path, capsys):
    out = tmp_path / "table.md"
    assert fc.main(["--quick", "--out", str(out)]) == 0
    text = out.read_text()
    assert text in capsys.readouterr().out
    rows = _table_rows(text)
    assert set(rows) == set(fc.LABELS.values())
    params = {}
    for variant in fc.VARIANTS:
        cells = rows[fc.LABELS[variant]]
        width, reported = int(cells[1]), int(cells[2].replace(",", ""))
        # the count the example reports is conv3d.summary's count of the same network
        assert reported == _summary_params(fc.build(variant, width), frames=4, size=12)
        params[variant] = reported
        for col in (5, 6):  # test accuracy after epoch 1 and at the end
            assert 0.0 <= float(cells[col].split("%")[0]) / 100 <= 1.0
        assert float(cells[8]) > 0  # median step time in seconds
    ref = params["r3d"]
    for variant, n in params.items():
        assert abs(n - ref) / ref <= fc.TOLERANCE, (variant, n, ref)
    # the wider base of MC3 is what equalizes it: at R3D's width it has far fewer parameters
    r3d_width = int(rows[fc.LABELS["r3d"]][1])
    assert int(rows[fc.LABELS["mc3"]][1]) > r3d_width
    assert fc.count_params(fc.build("mc3", r3d_width)) < 0.5 * ref


def test_variants_put_their_temporal_kernels_where_they_claim(fc):
    top, bottom = fc.build("rmc3", 4), fc.build("mc3", 4)
    full, factorized = fc.build("r3d", 4), fc.build("r2plus1d", 4)
    # rMC3 (top-heavy): 2D stem and stage 1, 3D in stages 2-4
    assert top.state_dict()["stem.0.weight"].shape[2:] == (1, 7, 7)
    assert set(_temporal_kernels(top, "layer1.").values()) == {1}
    for stage in ("layer2.", "layer3.", "layer4."):
        assert set(_temporal_kernels(top, stage).values()) == {3}
    # MC3 (bottom-heavy): the reverse
    assert bottom.state_dict()["stem.0.weight"].shape[2:] == (3, 7, 7)
    assert set(_temporal_kernels(bottom, "layer1.").values()) == {3}
    for stage in ("layer2.", "layer3.", "layer4."):
        assert set(_temporal_kernels(bottom, stage).values()) == {1}
    # R3D: 3x3x3 everywhere; R(2+1)D: every conv is 1x3x3 or 3x1x1, never both
    assert set(_temporal_kernels(full, "layer").values()) == {3}
    shapes = {tuple(w.shape[2:]) for name, w in factorized.state_dict().items()
              if name.startswith("layer") and w.ndim == 5 and "downsample" not in name}
    assert shapes == {(1, 3, 3), (3, 1, 1)}
    # each residual branch has 16 convs (4 stages x 2 blocks x 2); none was skipped
    assert len(_temporal_kernels(top, "layer")) == len(_temporal_kernels(full, "layer")) == 16


def test_a_width_without_a_close_match_is_refused(fc):
    with pytest.raises(ValueError, match="--width 5.*within 3%"):
        fc.match_widths(5)
    with pytest.raises(ValueError, match="width must be an int >= 2"):
        fc.match_widths(1)
