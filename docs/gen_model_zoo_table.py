"""Write the totals table of docs/models/index.md with ``conv3d.summary`` itself.

    python docs/gen_model_zoo_table.py     # a few minutes: it runs each network once

For each network at its published width: the parameters and the multiply-accumulates (MACs)
per clip from ``conv3d.summary``, beside the figures torchvision publishes (``num_params`` and
``_ops`` of its weights' metadata, "GFLOPS" on its docs page, which are in fact MACs). The
MACs of the convolutions and Linear layers are shown apart from BatchNorm's (one per output
element at inference), since torchvision's count leaves BatchNorm out. The table goes between
the two marker lines of docs/models/index.md; nothing else in the file changes.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import conv3d
import conv3d.models as models

PAGE = Path(__file__).resolve().parent / "models" / "index.md"
START, END = "<!-- zoo-table:start -->", "<!-- zoo-table:end -->"

#: (name, clip (C, D, H, W), torchvision's published parameters, its published GMACs)
NETWORKS = [("r3d_18", (3, 16, 112, 112), 33_371_472, 40.697),
            ("mc3_18", (3, 16, 112, 112), 11_695_440, 43.343),
            ("r2plus1d_18", (3, 16, 112, 112), 31_505_325, 40.519),
            ("s3d", (3, 16, 224, 224), 8_320_048, 17.979)]


def count(name, clip):
    """(trainable parameters, conv + Linear MACs, BatchNorm MACs) from the summary table."""
    text = conv3d.summary(models.get_model(name), clip, print_fn=None)
    params = int(re.search(r"Trainable params: ([\d,]+)", text).group(1).replace(",", ""))
    macs = int(re.search(r"MACs per sample: ([\d,]+)", text).group(1).replace(",", ""))
    bn_macs, pending = 0, ""
    for line in text.splitlines():
        if "(None" not in line:
            pending = line  # a label too long for its column stands on the line above
            continue
        label = line.split("(None")[0].strip() or pending
        if label.endswith("(BatchNorm3d)"):
            bn_macs += int(line.split()[-1].replace(",", ""))
    return params, macs - bn_macs, bn_macs


def table() -> str:
    lines = ["| network | clip (C x D x H x W) | parameters | published | GMACs conv + fc "
             "| + BatchNorm | published GMACs |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name, clip, published_params, published_gmacs in NETWORKS:
        params, macs, bn = count(name, clip)
        print(f"{name}: {params:,} parameters, {macs:,} + {bn:,} MACs", file=sys.stderr)
        lines.append(f"| `{name}` | {' x '.join(map(str, clip))} | {params:,} "
                     f"| {published_params:,} | {macs / 1e9:.2f} | {bn / 1e9:.2f} "
                     f"| {published_gmacs:.2f} |")
    return "\n".join(lines)


def main():
    rows = table()  # first: it takes minutes, and the page may be edited meanwhile
    page = PAGE.read_text()
    head, rest = page.split(START)
    _, tail = rest.split(END)
    PAGE.write_text(f"{head}{START}\n{rows}\n{END}{tail}")


if __name__ == "__main__":
    main()
