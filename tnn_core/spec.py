"""Parse and validate a graph config into a ``GraphSpec``.

Validation runs before any module is built and collects every problem, each
with its config path (``nodes[conv3].recurrent_cell.name``), into one
``ConfigError``.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .building import INFERRED, check_component_spec
from .errors import ComponentNotFoundError, ConfigError, Problem
from .protocols import PROVIDED_ARGUMENTS
from .registry import registry
from .topology import Topology

logger = logging.getLogger(__name__)

__all__ = ["NodeSpec", "GraphSpec", "parse_graph_config", "validate_config", "SLOT_KINDS"]

#: Node key -> (component kind, default spec when the key is absent).
SLOT_KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "harbor_policy": ("harbor", {"name": "ResizeConcat"}),
    "pre_memory": ("memory_op", {"name": "Identity"}),
    "recurrent_cell": ("cell", {"name": "IdentityCell"}),
    "post_memory": ("memory_op", {"name": "Identity"}),
}

TOP_LEVEL_KEYS = ("nodes", "edges", "input_nodes", "output_node", "input_shape", "num_timesteps", "ff_order")
NODE_KEYS = ("name", "shape_from", "harbor_policy", "pre_memory", "recurrent_cell", "post_memory", "out_channels", "residual")
# Keys that configs of related projects carry and PyTorchTNN ignores; accepted with a debug log.
IGNORED_TOP_LEVEL_KEYS = ("addnet", "layernum_add", "retres", "sep_num", "description", "comment")


@dataclass(frozen=True)
class NodeSpec:
    """One node of a validated config."""

    name: str
    shape_from: str | None
    harbor_policy: dict[str, Any]
    pre_memory: dict[str, Any]
    recurrent_cell: dict[str, Any]
    post_memory: dict[str, Any]
    out_channels: int | None
    residual: bool

    def where(self, key: str | None = None) -> str:
        """Return the config path of this node, or of one of its keys."""
        return f"nodes[{self.name}]" + (f".{key}" if key else "")


@dataclass(frozen=True)
class GraphSpec:
    """A validated graph config plus its topology."""

    nodes: dict[str, NodeSpec]
    topology: Topology
    input_shape: tuple[int, int, int]
    num_timesteps: int | None
    source: str
    config: dict[str, Any]


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _did_you_mean(key: str, valid: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def parse_graph_config(
    config: Mapping[str, Any],
    source: str = "<dict>",
    input_shape: Any = None,
    num_timesteps: Any = None,
) -> GraphSpec:
    """Validate ``config`` (already loaded) and return its ``GraphSpec``.

    ``input_shape`` and ``num_timesteps`` override the config's values.
    Raises ``ConfigError`` listing every problem found.
    """
    problems: list[Problem] = []

    for key in config:
        if key not in TOP_LEVEL_KEYS:
            if key in IGNORED_TOP_LEVEL_KEYS:
                logger.debug("%s: ignoring top-level key %r", source, key)
                continue
            problems.append(Problem(key, f"unknown top-level key.{_did_you_mean(key, TOP_LEVEL_KEYS)} Valid keys: {', '.join(TOP_LEVEL_KEYS)}"))

    nodes = _parse_nodes(config.get("nodes"), problems)
    node_names = list(nodes)
    edges = _parse_edges(config.get("edges", []), node_names, problems)
    input_nodes = _parse_input_nodes(config.get("input_nodes"), node_names, problems)
    output_node = _parse_output_node(config.get("output_node"), node_names, problems)
    shape = _parse_input_shape(config.get("input_shape") if input_shape is None else input_shape, problems)
    steps = _parse_num_timesteps(config.get("num_timesteps") if num_timesteps is None else num_timesteps, problems)
    ff_order = _parse_ff_order(config.get("ff_order"), node_names, problems)

    # Structural checks need the node list and input nodes. With invalid edges only
    # shape_from values naming unknown nodes are reported, because reachability and
    # predecessor checks would mostly repeat the edge problems.
    edges_ok = not any(p.where.startswith("edges") for p in problems)
    if nodes and input_nodes:
        if edges_ok:
            _check_reachability(nodes, edges, input_nodes, problems)
            _check_shape_from(nodes, edges, input_nodes, problems)
        else:
            _check_shape_from_names(nodes, problems)
    for node in nodes.values():
        _check_components(node, problems)

    if problems:
        if all(p.missing_component for p in problems):
            raise ComponentNotFoundError(problems, source=source)
        raise ConfigError(problems, source=source)

    topology = Topology(
        node_names=node_names,
        edges=edges,
        input_nodes=input_nodes,
        output_node=output_node,
        shape_from={n.name: n.shape_from for n in nodes.values()},
        ff_order=ff_order,
    )
    return GraphSpec(nodes=nodes, topology=topology, input_shape=shape, num_timesteps=steps, source=source, config=dict(config))


def validate_config(source: Any, input_shape: Any = None, num_timesteps: Any = None) -> GraphSpec:
    """Load (a path or dict) and validate a config; raises ``ConfigError`` with every problem."""
    from .config import load_config

    config, label = load_config(source)
    return parse_graph_config(config, label, input_shape=input_shape, num_timesteps=num_timesteps)


# -- top-level keys ------------------------------------------------------------


def _parse_nodes(raw: Any, problems: list[Problem]) -> dict[str, NodeSpec]:
    if raw is None:
        problems.append(Problem("nodes", "missing: the config needs a 'nodes' list"))
        return {}
    if not isinstance(raw, list) or not raw:
        problems.append(Problem("nodes", f"expected a non-empty list of node mappings, got {raw!r}"))
        return {}

    nodes: dict[str, NodeSpec] = {}
    for index, node in enumerate(raw):
        where = f"nodes[{index}]"
        if not isinstance(node, Mapping):
            problems.append(Problem(where, f"expected a mapping with 'name' and components, got {node!r}"))
            continue
        name = node.get("name")
        if not isinstance(name, str) or not name:
            problems.append(Problem(f"{where}.name", f"missing or not a string: every node needs a unique 'name', got {name!r}"))
            continue
        if name in nodes:
            problems.append(Problem(f"nodes[{name}]", f"duplicate node name {name!r} (node {index}); node names must be unique"))
            continue
        if "." in name:
            problems.append(Problem(f"nodes[{name}].name", f"node names cannot contain '.', got {name!r}"))
            continue
        where = f"nodes[{name}]"
        for key in node:
            if key not in NODE_KEYS:
                problems.append(Problem(f"{where}.{key}", f"unknown node key.{_did_you_mean(key, NODE_KEYS)} Valid keys: {', '.join(NODE_KEYS)}"))

        out_channels = node.get("out_channels")
        if out_channels is not None and not _is_positive_int(out_channels):
            problems.append(Problem(f"{where}.out_channels", f"expected a positive integer, got {out_channels!r}"))
        residual = node.get("residual", False)
        if residual is None:
            residual = False
        if not isinstance(residual, bool):
            problems.append(Problem(f"{where}.residual", f"expected true or false, got {residual!r}"))
        shape_from = node.get("shape_from")
        if shape_from is not None and not isinstance(shape_from, str):
            problems.append(Problem(f"{where}.shape_from", f"expected a node name or null, got {shape_from!r}"))

        slots = {}
        for key, (_, default) in SLOT_KINDS.items():
            spec = node.get(key)
            slots[key] = dict(default) if spec is None else spec
        nodes[name] = NodeSpec(
            name=name,
            shape_from=shape_from if isinstance(shape_from, str) else None,
            out_channels=out_channels if _is_positive_int(out_channels) else None,
            residual=bool(residual) if isinstance(residual, bool) else False,
            **slots,
        )
    return nodes


def _parse_edges(raw: Any, node_names: list[str], problems: list[Problem]) -> list[tuple[str, str]]:
    if not isinstance(raw, list):
        problems.append(Problem("edges", f"expected a list of {{'from': ..., 'to': ...}} mappings, got {raw!r}"))
        return []
    edges = []
    for index, edge in enumerate(raw):
        where = f"edges[{index}]"
        if isinstance(edge, (list, tuple)) and len(edge) == 2:
            src, dst = edge
        elif isinstance(edge, Mapping) and "from" in edge and "to" in edge:
            src, dst = edge["from"], edge["to"]
        else:
            problems.append(Problem(where, f"expected {{'from': <node>, 'to': <node>}}, got {edge!r}"))
            continue
        ok = True
        for key, value in (("from", src), ("to", dst)):
            if value not in node_names:
                close = difflib.get_close_matches(str(value), node_names, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                problems.append(Problem(f"{where}.{key}", f"unknown node {value!r}.{hint} Nodes: {', '.join(node_names)}"))
                ok = False
        if ok:
            edges.append((src, dst))
    return edges


def _parse_input_nodes(raw: Any, node_names: list[str], problems: list[Problem]) -> list[str]:
    if raw is None:
        problems.append(Problem("input_nodes", "missing: list the nodes that receive the stimulus, e.g. [\"conv1\"]"))
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        problems.append(Problem("input_nodes", f"expected a non-empty list of node names, got {raw!r}"))
        return []
    valid = []
    for index, name in enumerate(raw):
        if name not in node_names:
            problems.append(Problem(f"input_nodes[{index}]", f"unknown node {name!r}; nodes: {', '.join(node_names)}"))
        elif name not in valid:
            valid.append(name)
    return valid


def _parse_output_node(raw: Any, node_names: list[str], problems: list[Problem]) -> str:
    if raw is None:
        problems.append(Problem("output_node", "missing: name the node whose output the graph returns"))
        return ""
    if not isinstance(raw, str) or raw not in node_names:
        problems.append(Problem("output_node", f"unknown node {raw!r}; nodes: {', '.join(node_names)}"))
        return ""
    return raw


def _parse_input_shape(raw: Any, problems: list[Problem]) -> tuple[int, int, int]:
    if raw is None:
        problems.append(Problem("input_shape", "missing: give the stimulus shape as [C, H, W] in the config or the input_shape argument"))
        return (0, 0, 0)
    if not isinstance(raw, (list, tuple)) or len(raw) != 3 or not all(_is_positive_int(v) for v in raw):
        problems.append(Problem("input_shape", f"expected [C, H, W] with three positive integers, got {raw!r}"))
        return (0, 0, 0)
    return (int(raw[0]), int(raw[1]), int(raw[2]))


def _parse_num_timesteps(raw: Any, problems: list[Problem]) -> int | None:
    if raw is None:
        return None
    if not _is_positive_int(raw):
        problems.append(Problem("num_timesteps", f"expected a positive integer or null, got {raw!r}"))
        return None
    return int(raw)


def _parse_ff_order(raw: Any, node_names: list[str], problems: list[Problem]) -> list[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or sorted(map(str, raw)) != sorted(node_names) or len(set(raw)) != len(raw):
        missing = [n for n in node_names if n not in (raw or [])]
        extra = [n for n in (raw if isinstance(raw, list) else []) if n not in node_names]
        problems.append(
            Problem("ff_order", f"must list every node exactly once; missing: {missing or 'none'}, unknown: {extra or 'none'}")
        )
        return None
    return list(raw)


# -- structure -------------------------------------------------------------------


def _check_reachability(nodes: dict[str, NodeSpec], edges: list[tuple[str, str]], input_nodes: list[str], problems: list[Problem]) -> None:
    successors: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        successors[src].append(dst)
    seen = set(input_nodes)
    stack = list(input_nodes)
    while stack:
        for nxt in successors[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    for name in nodes:
        if name not in seen:
            problems.append(
                Problem(f"nodes[{name}]", "unreachable from the input nodes, so it would never see the stimulus; "
                        "add an edge into it or list it in input_nodes")
            )


def _check_shape_from(nodes: dict[str, NodeSpec], edges: list[tuple[str, str]], input_nodes: list[str], problems: list[Problem]) -> None:
    predecessors: dict[str, set[str]] = {n: set() for n in nodes}
    for src, dst in edges:
        predecessors[dst].add(src)

    def ancestors(name: str) -> set[str]:
        seen: set[str] = set()
        stack = list(predecessors[name])
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(predecessors[current])
        return seen

    for node in nodes.values():
        where = node.where("shape_from")
        if node.name in input_nodes:
            if node.shape_from is not None:
                problems.append(Problem(where, f"input nodes take the stimulus size; set shape_from to null (got {node.shape_from!r})"))
            continue
        preds = sorted(predecessors[node.name])
        if node.shape_from is None:
            problems.append(Problem(where, f"missing: name the feedforward predecessor whose spatial size this node takes (one of {preds})"))
        elif node.shape_from not in nodes:
            problems.append(Problem(where, f"unknown node {node.shape_from!r}; choose one of the predecessors {preds}"))
        elif node.shape_from not in ancestors(node.name):
            # PyTorchTNN accepts any upstream node here (one of its own configs uses a
            # grandparent), so only nodes with no path into this one are rejected.
            problems.append(Problem(where, f"{node.shape_from!r} is not a predecessor of {node.name!r} (no path leads from it "
                                    f"to {node.name!r}); choose one of {preds} or add an edge from {node.shape_from!r}"))
    if any(p.where.endswith(".shape_from") for p in problems):
        return

    for node in nodes.values():  # following shape_from must lead back to an input node
        chain = [node.name]
        current = node.shape_from
        while current is not None and current not in chain:
            chain.append(current)
            current = nodes[current].shape_from
        if current is not None:
            problems.append(Problem(node.where("shape_from"), f"shape_from forms a cycle ({' -> '.join(chain + [current])}); "
                                    "following shape_from must lead back to an input node"))
            return


def _check_shape_from_names(nodes: dict[str, NodeSpec], problems: list[Problem]) -> None:
    for node in nodes.values():
        if node.shape_from is not None and node.shape_from not in nodes:
            problems.append(Problem(node.where("shape_from"), f"unknown node {node.shape_from!r}; nodes: {', '.join(nodes)}"))


def _check_components(node: NodeSpec, problems: list[Problem]) -> None:
    provided = {
        "harbor": dict.fromkeys(PROVIDED_ARGUMENTS["harbor"], INFERRED),
        "memory_op": dict.fromkeys(PROVIDED_ARGUMENTS["memory_op"], INFERRED),
        "cell": dict.fromkeys(PROVIDED_ARGUMENTS["cell"], INFERRED),
    }
    for key, (kind, _) in SLOT_KINDS.items():
        spec = getattr(node, key)
        found = check_component_spec(kind, spec, node.where(key), provided[kind])
        problems.extend(found)
        if not found:
            problems.extend(_check_nested(kind, spec, node.where(key), provided))


def _check_nested(kind: str, spec: Mapping[str, Any], where: str, provided: dict[str, dict[str, Any]]) -> list[Problem]:
    cls = registry.get(kind, spec["name"], f"{where}.name")
    nested = getattr(cls, "nested_specs", None)
    if nested is None:
        return []
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    try:
        inner = nested(kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        return [Problem(where, f"{spec['name']}: {exc}")]
    problems = []
    for inner_kind, path, inner_spec in inner:
        if inner_spec is None:
            continue
        inner_where = f"{where}.{path}"
        found = check_component_spec(inner_kind, inner_spec, inner_where, provided[inner_kind])
        problems.extend(found)
        if not found:
            problems.extend(_check_nested(inner_kind, inner_spec, inner_where, provided))
    return problems
