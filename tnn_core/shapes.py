"""Shape inference without side effects.

A module is run on the ``meta`` device with meta copies of its parameters and
buffers, so no real computation happens, no batch-norm statistics change and
the global random generator is not consumed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["infer_output_shape", "meta_tensor"]


def meta_tensor(shape: tuple[int, ...], batch: int = 2, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Return a meta tensor of shape ``(batch, *shape)``."""
    return torch.empty((batch, *shape), device="meta", dtype=dtype or torch.get_default_dtype())


def infer_output_shape(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """Run ``module(*args, **kwargs)`` on meta tensors and return the output's shape without the batch dimension.

    Tensor arguments should be meta tensors (see ``meta_tensor``). A tuple
    output such as a cell's ``(output, state)`` returns the first element's
    shape. The module's own parameters and buffers are left untouched.
    """
    named = [*module.named_parameters(), *module.named_buffers()]
    meta_tensors = {name: torch.empty_like(t, device="meta") for name, t in named}
    with torch.no_grad():
        output = functional_call(module, meta_tensors, args, kwargs, strict=False)
    if isinstance(output, (tuple, list)):
        output = output[0]
    return tuple(output.shape[1:])
