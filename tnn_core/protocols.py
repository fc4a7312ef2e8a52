"""The contracts that recurrent cells, memory ops and harbor policies follow.

A node of a temporal graph runs, at every time step::

    harbor policy -> pre-memory op -> recurrent cell -> post-memory op

Components are plain ``torch.nn.Module`` classes registered under a name in
an entry-point group (``tnn.cells``, ``tnn.memory_ops``, ``tnn.harbors``).
A config names them as ``{"name": <registered name>, **kwargs}``; the kwargs
are checked against the constructor's signature before anything is built.

Arguments the framework provides
--------------------------------
Besides the config's own keyword arguments, a constructor receives each of
the following **only if its signature declares a parameter of that name**
(a config that sets one to a different value than the graph infers is an
error):

=====================  ===========================================================
``in_channels``        memory ops: channels of the op's input.
``input_shape``        memory ops and cells: shape of one input sample without the
                       batch dimension, ``(C, H, W)`` or ``(C,)``.
``num_timesteps``      memory ops and cells: the graph's ``num_timesteps`` (sizes
                       time-varying batch norm); may be ``None``.
``input_in_channels``  cells: channels of the cell's input (the pre-memory output).
``res_channels``       cells that split inputs: channels of the feedforward input.
``fb_channels``        cells that split inputs: channels of all other inputs
                       concatenated, or ``None`` when the node has none.
``residual_shape``     post-memory ops of ``residual: true`` nodes: shape of the
                       harbor output that ``forward`` receives as ``residual``.
``input_shapes``       harbor policies: list of input shapes, ``(C, H, W)`` or ``(C,)``,
                       in concatenation order.
``output_spatial``     harbor policies: the spatial size every input is brought to,
                       ``(H, W)``, or ``()`` for vector nodes.
=====================  ===========================================================

Forward calls
-------------
Likewise, ``forward`` receives these keyword arguments only if declared:

* memory ops: ``forward(x, curr_timestep=...)``; a post-memory op of a node
  with ``residual: true`` also gets ``residual=<harbor output>``.
* cells: ``forward(inputs, state)`` returns ``(output, new_state)``; ``state``
  is ``None`` at the first step and the cell builds its zero state from the
  input. Optional keywords: ``curr_timestep`` (int), ``fb_input`` and
  ``res_input``. A cell that declares ``fb_input`` splits its node's inputs:
  the pre-memory op sees only the feedforward input (the stimulus for input
  nodes, otherwise the ``shape_from`` predecessor), ``res_input`` is that
  feedforward input as the harbor produced it, and ``fb_input`` is every other
  input concatenated (sorted by predecessor name), or ``None`` when there is
  none.
* harbor policies: ``forward(inputs)`` takes the list of input tensors in the
  order of ``input_shapes`` and returns one tensor; its ``out_channels``
  attribute gives that tensor's channel count.

Time-indexed components (time-varying batch norm) expose ``max_timesteps``;
the graph refuses to unroll for longer, naming the node.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

__all__ = ["RecurrentCell", "MemoryOp", "HarborPolicy", "PROVIDED_ARGUMENTS"]

#: Constructor arguments the framework provides, by component kind.
PROVIDED_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "memory_op": ("in_channels", "input_shape", "num_timesteps", "residual_shape"),
    "cell": ("input_in_channels", "input_shape", "num_timesteps", "res_channels", "fb_channels"),
    "harbor": ("input_shapes", "output_spatial"),
}


@runtime_checkable
class RecurrentCell(Protocol):
    """One recurrent update per call: ``(inputs, state) -> (output, new_state)``.

    ``inputs`` is ``(batch, channels, height, width)`` (or ``(batch, features)``);
    ``state`` is whatever the cell returned at the previous step (any tensor or
    tuple of tensors), or ``None`` at the first step.
    """

    def forward(self, inputs: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]: ...


@runtime_checkable
class MemoryOp(Protocol):
    """A stateless op before or after the recurrent cell, ``(batch, ...) -> (batch, ...)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class HarborPolicy(Protocol):
    """Combines a node's inputs (stimulus and predecessors' outputs) into one tensor."""

    out_channels: int

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor: ...
