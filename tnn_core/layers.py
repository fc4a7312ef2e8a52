"""Building blocks shared by cells and memory ops: activations by name,
weight initialisation from ``init_dict``, and time-varying batch norm.

Plugin authors may use these so their components read configs the same way
the built-in ones do.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["make_activation", "init_weight", "init_bias", "TimeVaryingNorm", "max_timesteps_of"]


def make_activation(name: str | None, kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """Build a ``torch.nn`` activation module from its class name.

    ``None`` gives ``nn.Identity``. Raises ``ValueError`` listing the valid
    names when ``name`` is not an activation class of ``torch.nn``.
    """
    if name is None:
        return nn.Identity()
    cls = getattr(nn, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)) or name not in _ACTIVATION_NAMES:
        valid = ", ".join(sorted(_ACTIVATION_NAMES))
        close = [n for n in _ACTIVATION_NAMES if isinstance(name, str) and n.lower() == name.lower()]
        close += difflib.get_close_matches(str(name), sorted(_ACTIVATION_NAMES), n=2, cutoff=0.7)
        hint = f" Did you mean {' or '.join(repr(c) for c in dict.fromkeys(close))}?" if close else ""
        raise ValueError(f"unknown activation {name!r}.{hint} Valid names (torch.nn activation classes): {valid}")
    try:
        return cls(**dict(kwargs or {}))
    except TypeError as exc:
        raise ValueError(f"invalid activation_func_kwargs for {name}: {exc}") from exc


def _activation_names() -> frozenset[str]:
    """Return the names of ``torch.nn`` classes defined in its activation module."""
    import torch.nn.modules.activation as activation_module

    names = set()
    for attr in dir(nn):
        cls = getattr(nn, attr)
        if isinstance(cls, type) and issubclass(cls, nn.Module) and cls.__module__ == activation_module.__name__:
            names.add(attr)
    names.add("Identity")
    names.discard("MultiheadAttention")  # not an elementwise activation: it takes query, key and value
    return frozenset(names)


_ACTIVATION_NAMES = _activation_names()


def init_weight(weight: torch.Tensor, init_dict: Mapping[str, Any] | None) -> None:
    """Initialise ``weight`` in place from ``{"method": <torch.nn.init name>, **kwargs}``.

    The caller's ``init_dict`` is never modified, so one dict may serve
    several layers. ``None`` keeps PyTorch's default initialisation.
    """
    if init_dict is None:
        return
    if not isinstance(init_dict, Mapping) or "method" not in init_dict:
        raise ValueError(
            f"init_dict must be a mapping with a 'method' key naming a torch.nn.init function, got {init_dict!r}"
        )
    kwargs = dict(init_dict)
    method_name = kwargs.pop("method")
    method = getattr(nn.init, method_name, None)
    if method is None or not callable(method) or method_name.startswith("_"):
        valid = ", ".join(n for n in dir(nn.init) if n.endswith("_") and not n.startswith("_"))
        raise ValueError(f"unknown init_dict method {method_name!r}; valid methods: {valid}")
    try:
        with torch.no_grad():
            method(weight, **kwargs)
    except TypeError as exc:
        raise ValueError(f"invalid init_dict arguments for {method_name}: {exc}") from exc


def init_bias(bias: torch.Tensor | None, value: float | None) -> None:
    """Set every entry of ``bias`` to ``value`` (no-op when either is ``None``)."""
    if bias is None or value is None:
        return
    with torch.no_grad():
        bias.fill_(float(value))


class TimeVaryingNorm(nn.ModuleList):
    """One normalisation layer per time step, selected by ``curr_timestep``.

    A ``ModuleList`` of ``num_timesteps`` layers, so a component that stores
    it as ``self.bns`` has PyTorchTNN's state-dict layout (``bns.<t>.weight``).
    Unrolling for more steps than ``num_timesteps`` is an error; graphs check
    ``max_timesteps`` before an unroll starts so the message can name the node.
    """

    def __init__(self, make_norm: Callable[[], nn.Module], num_timesteps: int | None) -> None:
        if num_timesteps is None or int(num_timesteps) < 1:
            raise ValueError(
                "batchnorm_timevary needs num_timesteps (a positive integer): set num_timesteps "
                "at the top of the config or pass it to the TemporalGraph"
            )
        super().__init__([make_norm() for _ in range(int(num_timesteps))])
        self.max_timesteps = int(num_timesteps)

    def forward(self, x: torch.Tensor, curr_timestep: int | None = None) -> torch.Tensor:
        if curr_timestep is None:
            raise ValueError("time-varying batch norm needs curr_timestep")
        if not 0 <= curr_timestep < self.max_timesteps:
            raise IndexError(
                f"time step {curr_timestep} is outside the {self.max_timesteps} time steps this "
                f"time-varying batch norm was built for"
            )
        return self[curr_timestep](x)


def max_timesteps_of(module: nn.Module) -> int | None:
    """Return the smallest ``max_timesteps`` declared by ``module`` or any submodule, or ``None``."""
    limits = [m.max_timesteps for m in module.modules() if isinstance(getattr(m, "max_timesteps", None), int)]
    return min(limits) if limits else None
