"""Feedforward and feedback inputs of a split cell in a graph, and PyTorchTNN checkpoints that ordered them by name.

The RGC node ``rgc`` reads its feedforward input from ``conv9`` (``shape_from``)
and feedback from ``conv10`` and ``conv11``, whose names sort before ``conv9``.
The graph passes ``conv9`` to the pre-memory op and ``[conv10, conv11]`` as
``fb_input``. PyTorchTNN instead concatenated the sorted names
``[conv10, conv11, conv9]`` and took ``conv10`` as feedforward, so its feedback
conv was trained on ``[conv11, conv9]``. On loading, ``tnn_core.compat`` keeps
each trained block on the input that now takes its place: ``conv11``'s block
stays with ``conv11``, and the block trained on ``conv9`` goes to ``conv10``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

import tnn_core
from tnn_core import TemporalGraph
from tnn_core.compat import load_ptnn_state_dict

CHANNELS = 4
INPUT_SHAPE = [2, 6, 6]
STEPS = 4
FEEDBACK_PREFIX = "nodes.rgc.recurrent_cell.feedback_conv."


def conv_node(name: str, shape_from: str | None) -> dict[str, Any]:
    return {
        "name": name,
        "shape_from": shape_from,
        "harbor_policy": {"name": "ResizeConcat"},
        "pre_memory": {"name": "Conv2dCell", "out_channels": CHANNELS, "ksize": [3, 3], "stride": 1, "padding": 1,
                       "activation": "ReLU"},
        "recurrent_cell": {"name": "IdentityCell"},
        "post_memory": {"name": "Identity"},
        "out_channels": CHANNELS,
    }


def make_config(cell: dict[str, Any], names: tuple[str, str, str] = ("conv9", "conv10", "conv11")) -> dict[str, Any]:
    """Return a graph ``ff -> rgc -> fb1 -> fb2`` with feedback edges ``fb1 -> rgc`` and ``fb2 -> rgc``."""
    ff, fb1, fb2 = names
    rgc = {
        "name": "rgc",
        "shape_from": ff,
        "harbor_policy": {"name": "ResizeConcat"},
        "pre_memory": {"name": "Identity"},
        "recurrent_cell": cell,
        "post_memory": {"name": "Identity"},
        "out_channels": CHANNELS,
    }
    return {
        "input_shape": INPUT_SHAPE,
        "num_timesteps": STEPS,
        "input_nodes": [ff],
        "output_node": fb2,
        "nodes": [conv_node(ff, None), rgc, conv_node(fb1, "rgc"), conv_node(fb2, fb1)],
        "edges": [
            {"from": ff, "to": "rgc"},
            {"from": "rgc", "to": fb1},
            {"from": fb1, "to": fb2},
            {"from": fb1, "to": "rgc"},
            {"from": fb2, "to": "rgc"},
        ],
    }


def rgc_spec(depth_separable: bool) -> dict[str, Any]:
    return {
        "name": "ReciprocalGatedCell",
        "out_channels": CHANNELS,
        "cell_depth": 3,
        "feedback_depth_separable": depth_separable,
        "ds_repeat": depth_separable,
    }


def ptnn_state_dict(graph: TemporalGraph, seed: int) -> dict[str, torch.Tensor]:
    """Return random values for ``graph``'s tensors under PyTorchTNN's names (``<node>._<slot>.<rest>``)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in graph.state_dict().items():
        _, node, slot, rest = key.split(".", 3)
        if value.is_floating_point():
            value = torch.randn(value.shape, generator=generator)
        state[f"{node}._{slot}.{rest}"] = value
    return state


def ptnn_key(key: str) -> str:
    _, node, slot, rest = key.split(".", 3)
    return f"{node}._{slot}.{rest}"


# --- Loading a PyTorchTNN checkpoint -------------------------------------------------------------


@pytest.mark.parametrize("depth_separable", [False, True], ids=["plain", "depth_separable"])
def test_ptnn_checkpoint_warns_and_reorders(depth_separable: bool, caplog: pytest.LogCaptureFixture) -> None:
    graph = TemporalGraph(make_config(rgc_spec(depth_separable)))
    source = ptnn_state_dict(graph, seed=11)

    with caplog.at_level(logging.WARNING, logger="tnn_core.compat"):
        load_ptnn_state_dict(graph, source)

    warnings = [r for r in caplog.records if r.name == "tnn_core.compat" and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert "node 'rgc'" in message
    assert "'conv10'" in message
    assert "'conv9'" in message


def test_ptnn_checkpoint_plain_feedback_blocks_swap() -> None:
    graph = TemporalGraph(make_config(rgc_spec(depth_separable=False)))
    source = ptnn_state_dict(graph, seed=12)

    load_ptnn_state_dict(graph, source)

    loaded = graph.state_dict()[f"{FEEDBACK_PREFIX}conv.weight"]
    trained = source["rgc._recurrent_cell.feedback_conv.conv.weight"]
    # Our block 0 is conv10. It takes PyTorchTNN's block 1, which was trained on conv9, because conv10 takes conv9's place.
    assert torch.equal(loaded[:, 0:CHANNELS], trained[:, CHANNELS:])
    # Our block 1 is conv11. It keeps PyTorchTNN's block 0, which was trained on conv11.
    assert torch.equal(loaded[:, CHANNELS:], trained[:, 0:CHANNELS])


def test_ptnn_checkpoint_depth_separable_blocks_swap() -> None:
    graph = TemporalGraph(make_config(rgc_spec(depth_separable=True)))
    source = ptnn_state_dict(graph, seed=13)

    load_ptnn_state_dict(graph, source)

    loaded = graph.state_dict()
    for name in ("depth_wise.weight", "depth_wise.bias", "repeat_depth.weight", "repeat_depth.bias"):
        ours = loaded[f"{FEEDBACK_PREFIX}{name}"]
        trained = source[f"rgc._recurrent_cell.feedback_conv.{name}"]
        assert torch.equal(ours[0:CHANNELS], trained[CHANNELS:]), name
        assert torch.equal(ours[CHANNELS:], trained[0:CHANNELS]), name
    ours = loaded[f"{FEEDBACK_PREFIX}point_wise.weight"]
    trained = source["rgc._recurrent_cell.feedback_conv.point_wise.weight"]
    assert torch.equal(ours[:, 0:CHANNELS], trained[:, CHANNELS:])
    assert torch.equal(ours[:, CHANNELS:], trained[:, 0:CHANNELS])


@pytest.mark.parametrize("depth_separable", [False, True], ids=["plain", "depth_separable"])
def test_ptnn_checkpoint_other_tensors_unchanged(depth_separable: bool) -> None:
    graph = TemporalGraph(make_config(rgc_spec(depth_separable)))
    source = ptnn_state_dict(graph, seed=14)
    permuted = {f"{FEEDBACK_PREFIX}{name}" for name in ("conv.weight", "depth_wise.weight", "depth_wise.bias",
                                                           "repeat_depth.weight", "repeat_depth.bias",
                                                           "point_wise.weight")}

    load_ptnn_state_dict(graph, source)

    for key, value in graph.state_dict().items():
        if key not in permuted:
            assert torch.equal(value, source[ptnn_key(key)]), f"{key} differs from the checkpoint"


@pytest.mark.parametrize("depth_separable", [False, True], ids=["plain", "depth_separable"])
def test_ptnn_checkpoint_graph_unrolls(depth_separable: bool) -> None:
    graph = TemporalGraph(make_config(rgc_spec(depth_separable)))
    load_ptnn_state_dict(graph, ptnn_state_dict(graph, seed=15))
    graph.eval()
    stimulus = torch.randn(2, *INPUT_SHAPE, generator=torch.Generator().manual_seed(16))

    with torch.no_grad():
        biological = graph(stimulus, return_all=True)
        full = graph.full_unroll(stimulus, return_all=True)

    assert biological.shape == (2, STEPS, CHANNELS, *INPUT_SHAPE[1:])
    assert full.shape == (2, STEPS, CHANNELS, *INPUT_SHAPE[1:])
    assert torch.isfinite(biological).all()
    assert torch.isfinite(full).all()


def test_ptnn_checkpoint_shape_from_first_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    # When shape_from sorts first, PyTorchTNN splits the inputs as the graph does, so nothing is logged or permuted.
    graph = TemporalGraph(make_config(rgc_spec(depth_separable=False), names=("conv1", "conv2", "conv3")))
    source = ptnn_state_dict(graph, seed=17)

    with caplog.at_level(logging.WARNING, logger="tnn_core.compat"):
        load_ptnn_state_dict(graph, source)

    assert not [r for r in caplog.records if r.name == "tnn_core.compat"]
    for key, value in graph.state_dict().items():
        assert torch.equal(value, source[ptnn_key(key)]), f"{key} differs from the checkpoint"


# --- What a split cell receives in a graph -------------------------------------------------------


class ProbeSplitCell(nn.Module):
    """A cell that returns its input and records the ``inputs`` and ``fb_input`` of every real (non-meta) call."""

    def __init__(self, input_in_channels: int, fb_channels: int | None = None) -> None:
        super().__init__()
        self.input_in_channels = input_in_channels
        self.fb_channels = fb_channels
        self.calls: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def forward(
        self, inputs: torch.Tensor, state: Any = None, fb_input: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Any]:
        if not inputs.is_meta:
            self.calls.append((inputs.clone(), None if fb_input is None else fb_input.clone()))
        return inputs, state


@pytest.fixture
def probe_graph() -> Iterator[TemporalGraph]:
    tnn_core.register("cell", "ProbeSplitCell", ProbeSplitCell)
    try:
        yield TemporalGraph(make_config({"name": "ProbeSplitCell"}))
    finally:
        tnn_core.unregister("cell", "ProbeSplitCell")


def test_probe_built_with_split_channels(probe_graph: TemporalGraph) -> None:
    cell = probe_graph.nodes["rgc"].recurrent_cell

    assert probe_graph.node_info["rgc"].harbor_order == ["conv9", "conv10", "conv11"]
    assert cell.input_in_channels == CHANNELS
    assert cell.fb_channels == 2 * CHANNELS


@pytest.mark.parametrize("mode", ["biological", "full"])
def test_probe_fb_input_is_feedback_predecessors(probe_graph: TemporalGraph, mode: str) -> None:
    cell = probe_graph.nodes["rgc"].recurrent_cell
    stimulus = torch.randn(2, *INPUT_SHAPE, generator=torch.Generator().manual_seed(18))

    with torch.no_grad():
        result = probe_graph.unroll(stimulus, mode=mode, return_activations=True)
    activations = result.activations

    assert len(cell.calls) == STEPS
    for t in range(1, STEPS):
        inputs, fb_input = cell.calls[t]
        # Feedback edges read the previous step in both modes, but conv9 -> rgc does so only in the biological one.
        ff_step = t - 1 if mode == "biological" else t
        assert torch.equal(inputs, activations[ff_step]["conv9"]), f"inputs at step {t}"
        assert fb_input is not None, f"no fb_input at step {t}"
        assert torch.equal(fb_input[:, :CHANNELS], activations[t - 1]["conv10"]), f"fb_input block 0 at step {t}"
        assert torch.equal(fb_input[:, CHANNELS:], activations[t - 1]["conv11"]), f"fb_input block 1 at step {t}"

    # Guards the checks above: the two feedback blocks must be distinguishable.
    assert not torch.equal(activations[STEPS - 2]["conv10"], activations[STEPS - 2]["conv11"])


def test_probe_fb_input_zero_at_first_step(probe_graph: TemporalGraph) -> None:
    cell = probe_graph.nodes["rgc"].recurrent_cell
    stimulus = torch.randn(2, *INPUT_SHAPE, generator=torch.Generator().manual_seed(19))

    with torch.no_grad():
        probe_graph.full_unroll(stimulus)

    _, fb_input = cell.calls[0]
    assert fb_input is not None
    assert fb_input.shape == (2, 2 * CHANNELS, *INPUT_SHAPE[1:])
    assert not fb_input.any(), "feedback at step 0 must be the zero initial output"


def test_probe_unknown_cell_after_unregister() -> None:
    # The fixture's cleanup must leave no registration behind for later tests.
    with pytest.raises(tnn_core.ComponentNotFoundError, match=re.escape("'ProbeSplitCell'")):
        TemporalGraph(make_config({"name": "ProbeSplitCell"}))
