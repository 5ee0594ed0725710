"""The oracle for the memory a training step keeps: torch's own saved-tensor hooks."""

from __future__ import annotations

import torch


def saved_for_backward(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd keeps for the backward pass of a training
    step's forward, the weights and buffers not counted."""
    storages = {}

    def pack(tensor):
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model.train()(x)
    state = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    return sum(size for pointer, size in storages.items() if pointer not in state)
