"""TemporalGraph construction, input checks, unroll semantics, hooks and checkpoint loading."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tnn_core
from tnn_core import MakeMovie, TemporalGraph, UnrollError, UnrollResult
from tnn_core.compat import CheckpointError, load_ptnn_state_dict

SLOT_TO_PTNN = {"harbor_policy": "_harbor_policy", "pre_memory": "_pre_memory", "recurrent_cell": "_recurrent_cell", "post_memory": "_post_memory"}


def conv_node(name: str, shape_from: str | None, out_channels: int = 2, **conv: Any) -> dict[str, Any]:
    return {
        "name": name,
        "shape_from": shape_from,
        "pre_memory": {"name": "Conv2dCell", "out_channels": out_channels, "ksize": 3, "padding": 1, **conv},
        "recurrent_cell": {"name": "IdentityCell"},
    }


def chain_config(**conv: Any) -> dict[str, Any]:
    """Return a three-node feedforward chain conv1 -> conv2 -> conv3 on 3x6x6 stimuli, 3 steps."""
    return {
        "nodes": [conv_node("conv1", None, **conv), conv_node("conv2", "conv1", **conv), conv_node("conv3", "conv2", **conv)],
        "edges": [{"from": "conv1", "to": "conv2"}, {"from": "conv2", "to": "conv3"}],
        "input_nodes": ["conv1"],
        "output_node": "conv3",
        "input_shape": [3, 6, 6],
        "num_timesteps": 3,
    }


def recurrent_config() -> dict[str, Any]:
    """Return a chain with batch norm and a ConvRNN cell, so construction creates buffers and recurrent weights."""
    config = chain_config(batchnorm=2)
    config["nodes"][1]["recurrent_cell"] = {"name": "ConvRNNBasicCell", "out_channels": 2, "ksize": 3, "padding": 1}
    return config


def read_parity_config(parity_dir: Path, case: str) -> Path:
    path = parity_dir / case / "config.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def to_ptnn_names(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename ``nodes.<node>.<slot>.<rest>`` keys to PyTorchTNN's ``<node>._<slot>.<rest>``."""
    renamed = {}
    for key, value in state_dict.items():
        _, node, slot, rest = key.split(".", 3)
        renamed[f"{node}.{SLOT_TO_PTNN[slot]}.{rest}"] = value.clone()
    return renamed


# -- construction ----------------------------------------------------------------------


def test_parameters_initialized():
    graph = TemporalGraph(recurrent_config())
    tensors = [*graph.named_parameters(), *graph.named_buffers()]
    assert tensors, "the graph has no parameters"
    for name, tensor in tensors:
        assert not isinstance(tensor, nn.parameter.UninitializedParameter), name
        assert not isinstance(tensor, nn.parameter.UninitializedBuffer), name
        assert tensor.device.type == "cpu", f"{name} is on {tensor.device}"


def test_construction_reproducible():
    torch.manual_seed(123)
    first = TemporalGraph(recurrent_config()).state_dict()
    torch.manual_seed(123)
    second = TemporalGraph(recurrent_config()).state_dict()
    assert list(first) == list(second)
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0, msg=f"{key} differs between constructions")


def test_construction_rng_only_for_init():
    config = {
        "nodes": [conv_node("only", None, out_channels=4)],
        "edges": [],
        "input_nodes": ["only"],
        "output_node": "only",
        "input_shape": [3, 6, 6],
    }
    torch.manual_seed(7)
    graph = TemporalGraph(config)
    after_graph = torch.rand(4)
    torch.manual_seed(7)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    after_conv = torch.rand(4)

    torch.testing.assert_close(graph.nodes["only"].pre_memory.conv.weight, conv.weight, rtol=0, atol=0)
    torch.testing.assert_close(after_graph, after_conv, rtol=0, atol=0, msg="construction drew more random numbers than nn.Conv2d")


def test_batchnorm_untouched_by_construction():
    graph = TemporalGraph(recurrent_config())
    for name in graph.node_names:
        bn = graph.nodes[name].pre_memory.bn
        assert torch.count_nonzero(bn.running_mean) == 0, f"{name}: running_mean changed"
        assert torch.all(bn.running_var == 1), f"{name}: running_var changed"
        assert int(bn.num_batches_tracked) == 0, f"{name}: num_batches_tracked is {int(bn.num_batches_tracked)}"


def test_single_node_without_edges():
    config = {
        "nodes": [conv_node("only", None, out_channels=4)],
        "edges": [],
        "input_nodes": ["only"],
        "output_node": "only",
        "input_shape": [3, 6, 6],
        "num_timesteps": 2,
    }
    graph = TemporalGraph(config).eval()
    x = torch.randn(2, 3, 6, 6)
    output = graph(x, return_all=True)
    assert output.shape == (2, 2, 4, 6, 6)
    expected = graph.nodes["only"].pre_memory(x)
    torch.testing.assert_close(output[:, 1], expected)


def test_recurrent_module_rgc_accepted():
    torch.manual_seed(0)
    plain = TemporalGraph(recurrent_config()).eval()
    legacy = TemporalGraph(recurrent_config(), recurrent_module=tnn_core.RecurrentModuleRGC).eval()
    legacy.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(legacy(x, return_all=True), plain(x, return_all=True))


# -- input checks ----------------------------------------------------------------------------


def test_n_times_defaults_to_num_timesteps():
    graph = TemporalGraph(chain_config()).eval()
    output = graph(torch.randn(2, 3, 6, 6), return_all=True)
    assert output.shape[1] == 3, f"unrolled {output.shape[1]} steps, num_timesteps is 3"


def test_wrong_time_dimension():
    graph = TemporalGraph(chain_config())
    with pytest.raises(UnrollError) as info:
        graph(torch.randn(2, 4, 3, 6, 6), n_times=3)
    assert "4 time steps" in str(info.value), str(info.value)
    assert "n_times is 3" in str(info.value), str(info.value)


def test_wrong_frame_shape():
    graph = TemporalGraph(chain_config())
    with pytest.raises(UnrollError) as info:
        graph(torch.randn(2, 3, 3, 5, 6))
    assert "[3, 6, 6]" in str(info.value), str(info.value)
    assert "[3, 5, 6]" in str(info.value), str(info.value)


def test_three_dimensional_input():
    graph = TemporalGraph(chain_config())
    with pytest.raises(UnrollError) as info:
        graph(torch.randn(3, 6, 6))
    assert "[3, 6, 6]" in str(info.value), str(info.value)
    assert "(batch, C, H, W)" in str(info.value), str(info.value)


def test_timevary_batchnorm_step_limit():
    config = chain_config()
    config["nodes"][1]["pre_memory"].update(batchnorm=2, batchnorm_timevary=True)
    graph = TemporalGraph(config).eval()
    assert graph(torch.randn(1, 3, 6, 6), n_times=3).shape == (1, 2, 6, 6)
    with pytest.raises(UnrollError) as info:
        graph(torch.randn(1, 3, 6, 6), n_times=4)
    assert "'conv2'" in str(info.value), str(info.value)
    assert "built for 3 time steps" in str(info.value), str(info.value)
    assert "cannot unroll 4 steps" in str(info.value), str(info.value)


# -- unroll results --------------------------------------------------------------------------


def test_float64_graph():
    graph = TemporalGraph(recurrent_config()).double().eval()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    output, activations = graph(x, return_all=True, return_activations=True)
    assert output.dtype == torch.float64
    for t, by_node in activations.items():
        for name, tensor in by_node.items():
            assert tensor.dtype == torch.float64, f"step {t}, node {name}: {tensor.dtype}"


def test_return_shapes():
    graph = TemporalGraph(chain_config()).eval()
    x = torch.randn(2, 4, 3, 6, 6)

    last = graph(x, n_times=4)
    assert last.shape == (2, 2, 6, 6)

    every = graph(x, n_times=4, return_all=True)
    assert every.shape == (2, 4, 2, 6, 6)
    torch.testing.assert_close(every[:, -1], last)

    output, activations = graph(x, n_times=4, return_activations=True)
    assert output.shape == (2, 2, 6, 6)
    assert sorted(activations) == [0, 1, 2, 3]
    for t in range(4):
        assert sorted(activations[t]) == ["conv1", "conv2", "conv3"], f"step {t}"
        assert activations[t]["conv2"].shape == (2, 2, 6, 6), f"step {t}"
    torch.testing.assert_close(activations[3]["conv3"], last)


def test_unroll_result():
    graph = TemporalGraph(chain_config()).eval()
    x = torch.randn(2, 3, 6, 6)
    result = graph.unroll(x, n_times=2, mode="full", return_activations=True)
    assert isinstance(result, UnrollResult)
    assert result.outputs.shape == (2, 2, 2, 6, 6)
    torch.testing.assert_close(result.output, result.outputs[:, -1])
    torch.testing.assert_close(result.outputs, graph.full_unroll(x, n_times=2, return_all=True))
    assert sorted(result.activations) == [0, 1]


def test_biological_delay_of_chain():
    graph = TemporalGraph(chain_config()).eval()
    x = torch.randn(2, 5, 3, 6, 6)
    base = graph(x, n_times=5, return_all=True)

    changed = x.clone()
    changed[:, 1] += 1.0  # perturb only the frame of step 1
    perturbed = graph(changed, n_times=5, return_all=True)
    for t in range(3):
        torch.testing.assert_close(perturbed[:, t], base[:, t], msg=f"step {t} saw the frame of step 1 too early")
    assert not torch.allclose(perturbed[:, 3], base[:, 3]), "step 3 should see the frame of step 1 (two edges later)"


def test_biological_first_stimulus_step():
    graph = TemporalGraph(chain_config()).eval()
    x = torch.randn(2, 3, 6, 6)
    base = graph(x, n_times=4, return_all=True)
    perturbed = graph(x + 1.0, n_times=4, return_all=True)
    torch.testing.assert_close(perturbed[:, 0], base[:, 0], msg="step 0 depends on the stimulus")
    torch.testing.assert_close(perturbed[:, 1], base[:, 1], msg="step 1 depends on the stimulus")
    assert not torch.allclose(perturbed[:, 2], base[:, 2]), "step 2 should depend on the stimulus"


def test_full_unroll_same_step():
    graph = TemporalGraph(chain_config()).eval()
    x = torch.randn(2, 3, 3, 6, 6)
    changed = x.clone()
    changed[:, 1] += 1.0
    base = graph.full_unroll(x, n_times=3, return_all=True)
    perturbed = graph.full_unroll(changed, n_times=3, return_all=True)
    torch.testing.assert_close(perturbed[:, 0], base[:, 0])
    assert not torch.allclose(perturbed[:, 1], base[:, 1]), "the full unroll should pass frame 1 through at step 1"
    torch.testing.assert_close(perturbed[:, 2], base[:, 2], msg="a feedforward graph of identity cells has no memory")


def test_feedback_edges_found(parity_dir: Path):
    feedback = TemporalGraph(read_parity_config(parity_dir, "test_identity_feedback"))
    assert feedback.feedback_edges == [("output", "conv1")]
    multi = TemporalGraph(read_parity_config(parity_dir, "extra_resize_multi_input"))
    assert multi.feedback_edges == [("top", "conv9")]


def test_full_unroll_feedback_reads_previous(parity_dir: Path):
    graph = TemporalGraph(read_parity_config(parity_dir, "test_identity_feedback")).eval()
    assert graph.node_info["conv1"].harbor_order == [None, "output"]
    x = torch.randn(2, 5, 3, 6, 6)
    with torch.no_grad():
        outputs = graph.full_unroll(x, n_times=5, return_all=True)

        previous_output = torch.zeros(2, 1, 6, 6)
        state = None
        for t in range(5):
            conv1, state = graph.nodes["conv1"]([x[:, t], previous_output], state, t)
            output, _ = graph.nodes["output"]([conv1], None, t)
            torch.testing.assert_close(outputs[:, t], output, msg=f"step {t}")
            previous_output = output


# -- stimulus presentation -------------------------------------------------------------------


def test_make_movie_frames():
    images = torch.rand(2, 3, 4, 4)
    original = images.clone()
    movie = MakeMovie(times=5, image_off=2, blank=0.25)(images)
    assert movie.shape == (2, 5, 3, 4, 4)
    torch.testing.assert_close(movie[:, 0], images)
    torch.testing.assert_close(movie[:, 1], images)
    assert torch.all(movie[:, 2:] == 0.25), "blank frames should hold the blank value"
    movie.fill_(9.0)
    torch.testing.assert_close(images, original, msg="MakeMovie output shares memory with its input")


def test_make_movie_limits():
    images = torch.rand(1, 1, 2, 2)
    always = MakeMovie(times=3, image_off=10)(images)
    assert always.shape == (1, 3, 1, 2, 2)
    torch.testing.assert_close(always[:, 2], images)
    never = MakeMovie(times=3, image_off=0)(images)
    assert torch.all(never == 0.5), "image_off=0 should give only blank frames of the default value 0.5"


def test_make_movie_five_dimensional():
    clip = torch.rand(2, 4, 3, 4, 4)
    original = clip.clone()
    movie = MakeMovie(times=3, image_off=3)(clip)
    assert movie.shape == (2, 3, 3, 4, 4)
    torch.testing.assert_close(movie[:, 2], clip[:, 0])
    torch.testing.assert_close(clip, original)


def test_make_movie_invalid_input():
    with pytest.raises(ValueError, match=r"\(batch, C, H, W\)"):
        MakeMovie(times=3, image_off=1)(torch.rand(3, 4, 4))


def test_transform_applied():
    torch.manual_seed(0)
    graph = TemporalGraph(chain_config(), transform=lambda x: 2.0 * x + 1.0).eval()
    reference = TemporalGraph(chain_config()).eval()
    reference.load_state_dict(graph.state_dict())
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(graph(x, return_all=True), reference(2.0 * x + 1.0, return_all=True))
    torch.testing.assert_close(graph.full_unroll(x, return_all=True), reference.full_unroll(2.0 * x + 1.0, return_all=True))


# -- hooks -----------------------------------------------------------------------------------------


class StepRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, tuple[int, ...]]] = []

    @tnn_core.hookimpl
    def tnn_unroll_step(self, graph, node, timestep, output, state):
        self.calls.append((node, timestep, tuple(output.shape)))


def test_unroll_step_hook():
    graph = TemporalGraph(chain_config()).eval()
    x = torch.randn(2, 3, 6, 6)
    recorder = StepRecorder()
    manager = tnn_core.plugin_manager()
    manager.register(recorder)
    try:
        graph(x, n_times=3)
        seen = sorted((node, t) for node, t, _ in recorder.calls)
        expected = sorted((node, t) for node in ("conv1", "conv2", "conv3") for t in range(3))
        assert seen == expected
        assert all(shape == (2, 2, 6, 6) for _, _, shape in recorder.calls)

        recorder.calls.clear()
        graph.full_unroll(x, n_times=2)
        assert len(recorder.calls) == 6, recorder.calls
    finally:
        if manager.is_registered(recorder):
            manager.unregister(recorder)

    recorder.calls.clear()
    graph(x, n_times=3)
    assert recorder.calls == [], "an unregistered hook was still called"


class LayersDialect:
    """Translate ``{"layers": [{"name": ..., "channels": ...}, ...]}`` into a chain of conv nodes."""

    @tnn_core.hookimpl
    def tnn_rewrite_config(self, config, source):
        if "layers" not in config:
            return None
        layers = config["layers"]
        nodes = []
        for index, layer in enumerate(layers):
            previous = layers[index - 1]["name"] if index else None
            nodes.append(conv_node(layer["name"], previous, out_channels=layer["channels"]))
        edges = [{"from": a["name"], "to": b["name"]} for a, b in zip(layers, layers[1:])]
        return {
            "nodes": nodes,
            "edges": edges,
            "input_nodes": [layers[0]["name"]],
            "output_node": layers[-1]["name"],
            "input_shape": config["input_shape"],
        }


def test_rewrite_config_hook():
    dialect = {"layers": [{"name": "v1", "channels": 4}, {"name": "v2", "channels": 3}], "input_shape": [1, 5, 5]}
    before = copy.deepcopy(dialect)
    plugin = LayersDialect()
    manager = tnn_core.plugin_manager()
    manager.register(plugin)
    try:
        graph = TemporalGraph(dialect)
    finally:
        manager.unregister(plugin)
    assert graph.node_names == ["v1", "v2"]
    assert graph.edges == [("v1", "v2")]
    assert graph(torch.randn(1, 1, 5, 5), n_times=2).shape == (1, 3, 5, 5)
    assert dialect == before, "the rewrite hook changed the caller's dict"
    with pytest.raises(tnn_core.ConfigError):
        TemporalGraph(dialect)


# -- harbor resizing ---------------------------------------------------------------------------


def test_resize_concat_antialias():
    config = {
        "nodes": [
            conv_node("big", None),
            conv_node("small", "big", out_channels=3, stride=2),
            {"name": "merge", "shape_from": "small"},
        ],
        "edges": [{"from": "big", "to": "small"}, {"from": "big", "to": "merge"}, {"from": "small", "to": "merge"}],
        "input_nodes": ["big"],
        "output_node": "merge",
        "input_shape": [3, 9, 9],
    }
    graph = TemporalGraph(config).eval()
    assert graph.node_info["small"].output_shape == (3, 5, 5)
    assert graph.node_info["merge"].harbor_order == ["big", "small"]
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        _, activations = graph.full_unroll(x, n_times=2, return_activations=True)
    step = activations[1]
    resized = F.interpolate(step["big"], size=(5, 5), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(step["merge"], torch.cat([resized, step["small"]], dim=1))


# -- PyTorchTNN checkpoints ----------------------------------------------------------------------


def test_load_ptnn_state_dict():
    source = TemporalGraph(recurrent_config())
    target = TemporalGraph(recurrent_config())
    ptnn = to_ptnn_names(source.state_dict())
    load_ptnn_state_dict(target, ptnn)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_load_ptnn_strips_lightning_prefix():
    source = TemporalGraph(chain_config())
    target = TemporalGraph(chain_config())
    lightning = {f"model.{key}": value for key, value in to_ptnn_names(source.state_dict()).items()}
    load_ptnn_state_dict(target, lightning)
    weight = "nodes.conv2.pre_memory.conv.weight"
    torch.testing.assert_close(target.state_dict()[weight], source.state_dict()[weight], rtol=0, atol=0)


def test_load_ptnn_missing_key():
    graph = TemporalGraph(chain_config())
    ptnn = to_ptnn_names(graph.state_dict())
    del ptnn["conv2._pre_memory.conv.bias"]
    with pytest.raises(CheckpointError) as info:
        load_ptnn_state_dict(graph, ptnn)
    wheres = [p.where for p in info.value.problems]
    assert wheres == ["nodes.conv2.pre_memory.conv.bias"], wheres
    assert "missing" in info.value.problems[0].message


def test_load_ptnn_unexpected_key():
    graph = TemporalGraph(chain_config())
    ptnn = to_ptnn_names(graph.state_dict())
    ptnn["conv2._pre_memory.conv.extra"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as info:
        load_ptnn_state_dict(graph, ptnn)
    wheres = [p.where for p in info.value.problems]
    assert wheres == ["nodes.conv2.pre_memory.conv.extra"], wheres
    assert "unexpected" in info.value.problems[0].message


def test_load_ptnn_misshaped_key():
    graph = TemporalGraph(chain_config())
    ptnn = to_ptnn_names(graph.state_dict())
    ptnn["conv3._pre_memory.conv.weight"] = torch.zeros(2, 2, 5, 5)
    with pytest.raises(CheckpointError) as info:
        load_ptnn_state_dict(graph, ptnn)
    problem = info.value.problems[0]
    assert problem.where == "nodes.conv3.pre_memory.conv.weight"
    assert "[2, 2, 5, 5]" in problem.message, problem.message
    assert "[2, 2, 3, 3]" in problem.message, problem.message
