"""A node of a temporal graph: harbor policy -> pre-memory -> recurrent cell -> post-memory."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

__all__ = ["RecurrentModule", "RecurrentModuleRGC", "declared_forward_arguments"]


def declared_forward_arguments(module: nn.Module | type[nn.Module]) -> frozenset[str]:
    """Return the names of the keyword arguments ``forward`` of a module or module class declares (``**kwargs`` counts as none)."""
    params = inspect.signature(module.forward).parameters.values()
    return frozenset(
        p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )


class RecurrentModule(nn.Module):
    """One node of a ``TemporalGraph``.

    At each time step the node combines its inputs with the harbor policy,
    then applies the pre-memory op, the recurrent cell and the post-memory
    op. Which optional arguments each component receives (``curr_timestep``,
    ``residual``, ``fb_input``, ``res_input``) is read from its ``forward``
    signature once, at construction, so the per-step call does no
    introspection.

    Args:
        name: node name.
        harbor_policy, pre_memory, recurrent_cell, post_memory: built components.
        residual: pass the harbor output to the post-memory op as ``residual``.
        ff_channels: for cells that declare ``fb_input``, the number of
            leading harbor-output channels that form the feedforward input;
            the remaining channels are the feedback input.
    """

    def __init__(
        self,
        name: str,
        harbor_policy: nn.Module,
        pre_memory: nn.Module,
        recurrent_cell: nn.Module,
        post_memory: nn.Module,
        *,
        residual: bool = False,
        ff_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.harbor_policy = harbor_policy
        self.pre_memory = pre_memory
        self.recurrent_cell = recurrent_cell
        self.post_memory = post_memory
        self.residual = residual

        pre_args = declared_forward_arguments(pre_memory)
        post_args = declared_forward_arguments(post_memory)
        cell_args = declared_forward_arguments(recurrent_cell)
        self._pre_takes_timestep = "curr_timestep" in pre_args
        self._post_takes_timestep = "curr_timestep" in post_args
        self._cell_takes_timestep = "curr_timestep" in cell_args
        self._cell_takes_residual = "res_input" in cell_args
        self.splits_inputs = "fb_input" in cell_args
        self.ff_channels = ff_channels if self.splits_inputs else None
        self._has_feedback_input = False

    def set_has_feedback_input(self, value: bool) -> None:
        """Record whether the node has inputs besides its feedforward one (split cells only)."""
        self._has_feedback_input = value

    def forward(self, inputs: list[torch.Tensor], state: Any = None, curr_timestep: int = 0) -> tuple[torch.Tensor, Any]:
        """Run one time step.

        Args:
            inputs: the node's inputs in harbor order, each ``(batch, C, H, W)``
                or ``(batch, C)``.
            state: the cell state from the previous step, ``None`` at the first.
            curr_timestep: the time step, from 0.

        Returns:
            ``(output, new_state)``.
        """
        harbor_output = self.harbor_policy(inputs)

        cell_kwargs: dict[str, Any] = {}
        if self.splits_inputs:
            ff_input = harbor_output[:, : self.ff_channels]
            cell_kwargs["fb_input"] = harbor_output[:, self.ff_channels :] if self._has_feedback_input else None
            harbor_output = ff_input
        if self._cell_takes_residual:
            cell_kwargs["res_input"] = harbor_output
        if self._cell_takes_timestep:
            cell_kwargs["curr_timestep"] = curr_timestep

        if self._pre_takes_timestep:
            pre_output = self.pre_memory(harbor_output, curr_timestep=curr_timestep)
        else:
            pre_output = self.pre_memory(harbor_output)

        cell_output, new_state = self.recurrent_cell(pre_output, state, **cell_kwargs)

        post_kwargs: dict[str, Any] = {}
        if self._post_takes_timestep:
            post_kwargs["curr_timestep"] = curr_timestep
        if self.residual:
            post_kwargs["residual"] = harbor_output
        output = self.post_memory(cell_output, **post_kwargs)
        return output, new_state


class RecurrentModuleRGC(RecurrentModule):
    """Kept so code written for PyTorchTNN, which passes ``recurrent_module=RecurrentModuleRGC``, still runs.

    It behaves exactly like ``RecurrentModule``: a cell that needs its
    feedforward and feedback inputs separately declares ``fb_input`` in its
    ``forward`` and every node handles that.
    """
