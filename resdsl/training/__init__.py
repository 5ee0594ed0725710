"""`resdsl train`: the paper's recipe on any .arch network, on one CPU or GPU or under
torchrun. loop.py joins the pieces and its docstring says which does what."""
