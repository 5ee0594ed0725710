"""`resdsl eval` and `resdsl responses`: trained networks tested as the paper tests them.

members.py (checkpoints and weight files, as modules with their input normalisation) →
views.py (centre crop, 10-crop, fully-convolutional multi-scale) → score.py (softmax
scores averaged over views and over an ensemble's members; top-1 and top-5 error).
responses.py measures Figure 7's layer responses.
"""
