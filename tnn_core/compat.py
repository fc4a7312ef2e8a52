"""Load PyTorchTNN checkpoints into graphs built from the same config.

PyTorchTNN stores node ``conv1``'s pre-memory conv as
``conv1._pre_memory.conv.weight``; a ``TemporalGraph`` stores it as
``nodes.conv1.pre_memory.conv.weight``. Inside the components the names are
the same, so conversion only renames the node prefix.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError, Problem

logger = logging.getLogger(__name__)

__all__ = ["CheckpointError", "convert_ptnn_state_dict", "load_ptnn_state_dict", "load_state_dict_file", "read_checkpoint_state_dict"]

_SLOTS = {"_harbor_policy": "harbor_policy", "_pre_memory": "pre_memory", "_recurrent_cell": "recurrent_cell", "_post_memory": "post_memory"}
_WRAPPER_PREFIXES = ("model.", "module.", "_orig_mod.")


class CheckpointError(ConfigError):
    """A checkpoint cannot be read or does not fit the graph it is loaded into."""

    def _format(self) -> str:
        return super()._format().replace("invalid config", "invalid checkpoint", 1)


def _strip_wrapper_prefixes(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(state_dict)
    changed = True
    while changed and result:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in result):
                result = {k[len(prefix):]: v for k, v in result.items()}
                changed = True
    return result


def convert_ptnn_state_dict(graph: Any, state_dict: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Return ``state_dict`` (PyTorchTNN naming) renamed for ``graph``.

    Prefixes added by Lightning (``model.``), DDP (``module.``) and
    ``torch.compile`` (``_orig_mod.``) are removed first. Keys that name no
    node of the graph are kept unchanged so a strict load reports them.
    Where a cell splits feedforward and feedback inputs and PyTorchTNN's
    name-sorted input order made a feedback input look feedforward, the
    cell's feedback weights are permuted (see ``_reorder_split_inputs``).
    """
    state = _strip_wrapper_prefixes(state_dict)
    converted: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        node, _, rest = key.partition(".")
        slot, _, tail = rest.partition(".")
        if node in graph.nodes and slot in _SLOTS:
            converted[f"nodes.{node}.{_SLOTS[slot]}.{tail}"] = value
        else:
            converted[key] = value
    _reorder_split_inputs(graph, converted)
    return converted


def _reorder_split_inputs(graph: Any, state: dict[str, torch.Tensor]) -> None:
    """Map PyTorchTNN's feedback-input channel order onto this graph's, for cells that split inputs.

    PyTorchTNN concatenates ``[stimulus] + sorted(predecessors)`` and treats
    the first block as feedforward. When a feedback predecessor's name sorts
    before the ``shape_from`` predecessor, that model fed the feedback map to
    the pre-memory op and the real feedforward map to the feedback path. Here
    the feedforward input is always ``shape_from``. A cell class may define
    ``reorder_feedback_channels(state, prefix, block_sizes, order)`` to
    permute its feedback weights; the conversion calls it with the block
    order that keeps each trained weight on the same channels.
    """
    topology = graph.topology
    for name, info in graph.node_info.items():
        if not info.splits_inputs or name in topology.input_nodes:
            continue
        ptnn_order = topology.harbor_order(name, split=False)
        ours = info.harbor_order
        if ptnn_order[0] == ours[0]:
            continue
        channels = {src: shape[0] for src, shape in zip(ours, info.input_shapes)}
        first, ff = ptnn_order[0], ours[0]
        logger.warning(
            "node %r: PyTorchTNN treats %r as the feedforward input because its name sorts first, but the graph's "
            "feedforward input is %r (shape_from). This graph feeds %r to the pre-memory op and %r to the "
            "feedback path; outputs differ from PyTorchTNN's for this node.", name, first, ff, ff, first,
        )
        if channels[first] != channels[ff]:
            raise CheckpointError(Problem(f"nodes[{name}]", f"PyTorchTNN splits this node's inputs at {channels[ff]} "
                                          f"channels but its first input {first!r} has {channels[first]}; the checkpoint "
                                          "cannot come from a working PyTorchTNN model of this config"))
        # PyTorchTNN's feedback blocks, by position, were trained on ptnn_order[1:].
        # The block trained on ff now receives `first`, the input that took its place.
        ptnn_fb = [first if src == ff else src for src in ptnn_order[1:]]
        our_fb = ours[1:]
        cell = graph.nodes[name].recurrent_cell
        reorder = getattr(cell, "reorder_feedback_channels", None)
        if ptnn_fb == our_fb:
            continue
        if reorder is None:
            raise CheckpointError(Problem(f"nodes[{name}].recurrent_cell", f"{type(cell).__name__} does not define "
                                          "reorder_feedback_channels, so the feedback weights cannot be mapped"))
        try:
            reorder(state, f"nodes.{name}.recurrent_cell.", [channels[s] for s in ptnn_fb], [ptnn_fb.index(s) for s in our_fb])
        except ValueError as exc:
            raise CheckpointError(Problem(f"nodes[{name}].recurrent_cell", str(exc))) from exc


def _key_problems(state: Mapping[str, Any], expected: Mapping[str, torch.Tensor], strict: bool = True) -> list[Problem]:
    """Return a problem per mis-shaped key of ``state`` and, with ``strict``, per missing or unexpected key."""
    problems = []
    if strict:
        problems += [Problem(k, "missing from the checkpoint") for k in expected if k not in state]
        problems += [Problem(k, "unexpected: the graph has no such parameter or buffer") for k in state if k not in expected]
    problems += [
        Problem(k, f"shape {list(v.shape)} in the checkpoint, {list(expected[k].shape)} in the graph")
        for k, v in state.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    return problems


def load_ptnn_state_dict(graph: Any, state_dict: Mapping[str, Any], strict: bool = True) -> dict[str, torch.Tensor]:
    """Load a PyTorchTNN state dict into ``graph`` and return the converted dict.

    With ``strict`` (the default) a missing, unexpected or mis-shaped key is
    a ``CheckpointError`` that names every such key. Values are cast to the
    graph's dtypes.
    """
    converted = convert_ptnn_state_dict(graph, state_dict)
    expected = graph.state_dict()
    problems = _key_problems(converted, expected, strict)
    if problems:
        raise CheckpointError(problems, source="(was it saved from the same config and input_shape?)")
    graph.load_state_dict({k: v for k, v in converted.items() if k in expected}, strict=strict)
    return converted


def load_state_dict_file(graph: Any, path: str | Path) -> None:
    """Load a state dict saved from a pytorch-tnn graph (``.pt``, or a ``tnn train`` ``.ckpt``) into ``graph``.

    Prefixes added by Lightning, DDP and ``torch.compile`` are removed. A
    missing, unexpected or mis-shaped key is a ``CheckpointError`` naming it.
    """
    state = _strip_wrapper_prefixes(read_checkpoint_state_dict(path))
    problems = _key_problems(state, graph.state_dict())
    if problems:
        looks_like_ptnn = any(f".{slot}." in key for key in state for slot in _SLOTS)
        hint = " (PyTorchTNN naming: convert it with `tnn convert-ptnn` first)" if looks_like_ptnn else ""
        raise CheckpointError(problems, source=f"{path}{hint}")
    graph.load_state_dict(state)


def read_checkpoint_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.pt``/``.pth`` file or a Lightning ``.ckpt`` (its ``state_dict`` entry)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(Problem("", f"checkpoint file {str(path)!r} not found"))
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(Problem("", f"cannot read {str(path)!r}: torch.load failed with {type(exc).__name__}, so it is "
                                      "corrupt or not a file saved by torch.save")) from exc
    if isinstance(data, Mapping) and isinstance(data.get("state_dict"), Mapping):
        data = data["state_dict"]
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(Problem("", f"{str(path)!r} contains no state dict (a mapping of names to tensors)"))
    return dict(data)
