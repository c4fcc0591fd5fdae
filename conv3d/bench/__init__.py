"""The conv3d benchmark suites: ``conv3d bench`` (or ``python -m conv3d.bench.run``).

* ``harness.py``: agreement check, warm-up, interleaved timing, medians and best times, time
  budgets, machine description;
* ``cases.py``: the ops suite's convolution forward / forward+backward (every strategy of
  ``conv3d.ops.fast.STRATEGIES`` a row) and max_pool3d;
* ``cases_model.py``: the (2+1)D block against the full 3D conv, one training step of the
  article's model;
* ``layers.py`` (+ ``layers.json``): every distinct layer of four video networks and a 3D U-Net;
* ``models.py``: whole r3d_18 and r2plus1d_18 against torchvision's, inference and training;
* ``tvload.py``: torchvision's video models without ``import torchvision``;
* ``report.py``: the Markdown page and the bar chart; ``run.py``: the command line.

Dev-only scripts (the layer table's generator, the first-call measurement) are in the
repository's ``benchmarks/`` folder.
"""
