"""`resdsl train`: the paper's recipe on any .arch network, on one CPU or GPU or under
torchrun. data.py (sources, augmentation, batch order) → recipe.py (defaults, learning
rate) → checkpoint.py (atomic save, resume) → loop.py (the loop, DDP, metrics)."""
