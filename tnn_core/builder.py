"""Build the node modules of a graph from its ``GraphSpec``, inferring every shape on the meta device."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from torch import nn

from .building import build_component
from .errors import ConfigError, Problem
from .layers import max_timesteps_of
from .node import RecurrentModule, declared_forward_arguments
from .registry import registry
from .shapes import infer_output_shape, meta_tensor
from .spec import GraphSpec, NodeSpec

logger = logging.getLogger(__name__)

__all__ = ["NodeInfo", "build_nodes"]

Shape = tuple[int, ...]


@dataclass
class NodeInfo:
    """Shapes and input order inferred for one node while building it."""

    name: str
    harbor_order: list[str | None]
    input_shapes: list[Shape]
    harbor_output_shape: Shape
    pre_memory_output_shape: Shape
    cell_output_shape: Shape
    output_shape: Shape
    splits_inputs: bool
    max_timesteps: int | None


def _cell_splits_inputs(spec: NodeSpec) -> bool:
    cls = registry.get("cell", spec.recurrent_cell["name"], spec.where("recurrent_cell.name"))
    return "fb_input" in declared_forward_arguments(cls)


def _resolve_module_class(recurrent_module: Any) -> type[RecurrentModule]:
    if recurrent_module is None:
        return RecurrentModule
    if isinstance(recurrent_module, type) and issubclass(recurrent_module, RecurrentModule):
        return recurrent_module
    name = getattr(recurrent_module, "__name__", repr(recurrent_module))
    if name in ("RecurrentModule", "RecurrentModuleRGC"):
        logger.info(
            "recurrent_module=%s from %s is not needed: cells declare the inputs they need, so every node uses "
            "tnn_core.RecurrentModule", name, getattr(recurrent_module, "__module__", "?"),
        )
        return RecurrentModule
    raise TypeError(
        f"recurrent_module must be tnn_core.RecurrentModule or a subclass of it, got {name}; "
        "cells that need feedback and residual inputs declare fb_input/res_input in forward instead"
    )


def build_nodes(spec: GraphSpec, recurrent_module: Any = None) -> tuple[dict[str, RecurrentModule], dict[str, NodeInfo]]:
    """Build every node of ``spec``; returns the modules and what was inferred about each, by name.

    Raises ``ConfigError`` naming the node and key when a component cannot be
    built or its output does not match the config (``out_channels``).
    """
    module_cls = _resolve_module_class(recurrent_module)
    topology = spec.topology
    modules: dict[str, RecurrentModule] = {}
    infos: dict[str, NodeInfo] = {}
    provisional: set[str] = set()

    for name in topology.build_order:
        node = spec.nodes[name]
        splits = _cell_splits_inputs(node)
        ff = topology.feedforward_input(name)
        if splits and ff is not None and ff not in topology.predecessors[name]:
            raise ConfigError(Problem(node.where("shape_from"), f"{node.recurrent_cell['name']} splits feedforward and feedback "
                                      f"inputs, so shape_from must be a direct predecessor; got {ff!r}"))
        order = topology.harbor_order(name, split=splits)
        input_shapes, guessed = _harbor_input_shapes(spec, name, order, infos)
        if guessed:
            provisional.add(name)
        target = _target_spatial(spec, name, infos)
        module, info = _build_node(spec, node, module_cls, order, input_shapes, target, splits)
        modules[name] = module
        infos[name] = info

    for name in provisional:  # rebuild harbors whose feedback inputs were not built yet
        node = spec.nodes[name]
        info = infos[name]
        input_shapes, _ = _harbor_input_shapes(spec, name, info.harbor_order, infos)
        harbor = _build_harbor(node, input_shapes, _target_spatial(spec, name, infos))
        if harbor.out_channels != info.harbor_output_shape[0]:
            raise ConfigError(
                Problem(node.where("harbor_policy"), f"the harbor policy gives {harbor.out_channels} channels with the "
                        f"actual input shapes but {info.harbor_output_shape[0]} with the provisional ones; harbor "
                        "policies must decide their channel count from the input channels alone")
            )
        modules[name].harbor_policy = harbor
        info.input_shapes = input_shapes

    return modules, infos


def _pred_channels(spec: GraphSpec, pred: str, infos: dict[str, NodeInfo], for_node: str) -> int:
    if pred in infos:
        return infos[pred].output_shape[0]
    channels = spec.nodes[pred].out_channels
    if channels is None:
        raise ConfigError(
            Problem(f"nodes[{pred}].out_channels", f"missing: {pred!r} feeds back into {for_node!r}, so its channel count "
                    "must be known before it is built; set out_channels")
        )
    return channels


def _target_spatial(spec: GraphSpec, name: str, infos: dict[str, NodeInfo]) -> Shape:
    ff = spec.topology.feedforward_input(name)
    if ff is None:
        return tuple(spec.input_shape[1:])
    return tuple(infos[ff].output_shape[1:])


def _harbor_input_shapes(spec: GraphSpec, name: str, order: list[str | None], infos: dict[str, NodeInfo]) -> tuple[list[Shape], bool]:
    target = _target_spatial(spec, name, infos)
    shapes: list[Shape] = []
    guessed = False
    for src in order:
        if src is None:
            shapes.append(tuple(spec.input_shape))
        elif src in infos:
            shapes.append(infos[src].output_shape)
        else:
            shapes.append((_pred_channels(spec, src, infos, name), *target))
            guessed = True
    return shapes, guessed


def _build_harbor(node: NodeSpec, input_shapes: list[Shape], target: Shape) -> nn.Module:
    return build_component(
        "harbor", node.harbor_policy, node.where("harbor_policy"),
        provided={"input_shapes": [tuple(s) for s in input_shapes], "output_spatial": tuple(target)},
    )


def _forward_kwargs(module: nn.Module, **candidates: Any) -> dict[str, Any]:
    declared = declared_forward_arguments(module)
    return {k: v for k, v in candidates.items() if k in declared}


def _build_node(
    spec: GraphSpec,
    node: NodeSpec,
    module_cls: type[RecurrentModule],
    order: list[str | None],
    input_shapes: list[Shape],
    target: Shape,
    splits: bool,
) -> tuple[RecurrentModule, NodeInfo]:
    steps = spec.num_timesteps

    harbor = _build_harbor(node, input_shapes, target)
    harbor_shape: Shape = (int(harbor.out_channels), *target)
    ff_channels = input_shapes[0][0]
    if splits and harbor.out_channels != sum(s[0] for s in input_shapes):
        raise ConfigError(Problem(node.where("harbor_policy"), "the recurrent cell splits feedforward and feedback inputs, "
                                  "which needs a concatenating harbor policy such as ResizeConcat"))
    pre_in: Shape = (ff_channels, *target) if splits else harbor_shape

    pre = build_component("memory_op", node.pre_memory, node.where("pre_memory"),
                          provided={"in_channels": pre_in[0], "input_shape": pre_in, "num_timesteps": steps})
    pre_out = _infer(node, "pre_memory", pre, meta_tensor(pre_in), **_forward_kwargs(pre, curr_timestep=0))

    fb_channels = harbor_shape[0] - ff_channels if splits and len(order) > 1 else None
    cell = build_component("cell", node.recurrent_cell, node.where("recurrent_cell"), provided={
        "input_in_channels": pre_out[0], "input_shape": pre_out, "num_timesteps": steps,
        "res_channels": ff_channels, "fb_channels": fb_channels,
    })
    cell_kwargs = _forward_kwargs(
        cell,
        curr_timestep=0,
        res_input=meta_tensor(pre_in),
        fb_input=meta_tensor((fb_channels, *target)) if fb_channels else None,
    )
    cell_out = _infer(node, "recurrent_cell", cell, meta_tensor(pre_out), None, **cell_kwargs)

    post = build_component("memory_op", node.post_memory, node.where("post_memory"), provided={
        "in_channels": cell_out[0], "input_shape": cell_out, "num_timesteps": steps, "residual_shape": pre_in,
    })
    post_declared = declared_forward_arguments(post)
    if node.residual and "residual" not in post_declared:
        raise ConfigError(Problem(node.where("residual"), f"residual is true but the post-memory op {node.post_memory['name']!r} "
                                  "takes no residual input; use ResidualAdd or set residual to false"))
    post_kwargs = _forward_kwargs(post, curr_timestep=0)
    if node.residual:
        post_kwargs["residual"] = meta_tensor(pre_in)
    out_shape = _infer(node, "post_memory", post, meta_tensor(cell_out), **post_kwargs)

    if node.out_channels is not None and out_shape[0] != node.out_channels:
        raise ConfigError(Problem(node.where("out_channels"), f"is {node.out_channels} but the node's output has "
                                  f"{out_shape[0]} channels (output shape {list(out_shape)}); make them match"))
    if len(out_shape) not in (1, 3):
        raise ConfigError(Problem(node.where(), f"node outputs must be (C, H, W) or (C,) per sample, got {list(out_shape)}"))

    module = module_cls(node.name, harbor, pre, cell, post, residual=node.residual, ff_channels=ff_channels if splits else None)
    module.set_has_feedback_input(splits and len(order) > 1)
    info = NodeInfo(
        name=node.name, harbor_order=order, input_shapes=input_shapes, harbor_output_shape=harbor_shape,
        pre_memory_output_shape=pre_out, cell_output_shape=cell_out, output_shape=out_shape,
        splits_inputs=splits, max_timesteps=max_timesteps_of(module),
    )
    return module, info


def _infer(node: NodeSpec, key: str, module: nn.Module, *args: Any, **kwargs: Any) -> Shape:
    try:
        return infer_output_shape(module, *args, **kwargs)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        shapes = [list(a.shape[1:]) for a in args if hasattr(a, "shape")]
        raise ConfigError(Problem(node.where(key), f"{type(module).__name__} failed on input of shape "
                                  f"{shapes[0] if shapes else '?'} (per sample): {exc}. That shape follows from input_shape "
                                  "and the ops before this one; if it is too small, use a larger input_shape or smaller "
                                  "strides and kernels")) from exc
