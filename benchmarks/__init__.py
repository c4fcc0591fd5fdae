"""The conv3d benchmark suite (issue 6): ``python -m benchmarks.run`` or ``conv3d bench``.

* ``harness.py``: agreement check, warm-up, interleaved timing, medians, machine description;
* ``cases.py``: conv3d forward / forward+backward and max_pool3d, every implementation a row;
* ``cases_model.py``: the (2+1)D block against the full 3D conv, one training step of the
  article's model;
* ``report.py``: the Markdown table and the bar chart; ``run.py``: the command line.
"""
