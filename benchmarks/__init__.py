"""Dev-only benchmark scripts of a source checkout (the suites themselves are ``conv3d.bench``):

* ``gen_layer_table.py``: writes ``conv3d/bench/layers.json`` from torchvision's video models;
* ``first_call.py``: how much slower the first call after an idle pause is (the reason for the
  harness's untimed call).
"""
