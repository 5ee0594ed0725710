"""The PyTorch backend: IR → a plan of modules → Python source → a live `nn.Module`.

`resdsl.load` and `resdsl compile` share one path: the module that `load` returns is
built by executing the very source that `compile` writes, so the two cannot disagree.
"""
