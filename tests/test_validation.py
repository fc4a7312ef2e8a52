"""Config validation: every problem is reported with its config path, the value and a fix."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tnn_core import ComponentNotFoundError, ConfigError, Problem, TemporalGraph
from tnn_core.spec import validate_config


def make_node(name: str, shape_from: str | None = None, out_channels: int = 2) -> dict[str, Any]:
    return {
        "name": name,
        "shape_from": shape_from,
        "pre_memory": {"name": "Conv2dCell", "out_channels": out_channels, "ksize": 3, "padding": 1},
        "recurrent_cell": {"name": "IdentityCell"},
    }


def chain_config() -> dict[str, Any]:
    """Return a valid three-node chain conv1 -> conv2 -> conv3 on 3x6x6 stimuli."""
    return {
        "nodes": [make_node("conv1"), make_node("conv2", "conv1"), make_node("conv3", "conv2")],
        "edges": [{"from": "conv1", "to": "conv2"}, {"from": "conv2", "to": "conv3"}],
        "input_nodes": ["conv1"],
        "output_node": "conv3",
        "input_shape": [3, 6, 6],
        "num_timesteps": 3,
    }


def node_of(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(node for node in config["nodes"] if node["name"] == name)


def validation_problems(config: Any) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    return info.value.problems


def build_problems(config: Any) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        TemporalGraph(config)
    return info.value.problems


def problem_at(problems: list[Problem], where: str) -> Problem:
    """Return the problem whose config path is ``where``, or fail the test with the list of all problems."""
    matches = [p for p in problems if p.where == where]
    assert matches, f"no problem at {where!r}; problems: {[str(p) for p in problems]}"
    return matches[0]


# -- structure -------------------------------------------------------------------


def test_edge_to_unknown_node():
    config = chain_config()
    config["edges"][1]["to"] = "conv9"
    problem = problem_at(validation_problems(config), "edges[1].to")
    assert "'conv9'" in problem.message, problem.message
    assert "Did you mean 'conv3'?" in problem.message, problem.message
    assert "conv1, conv2, conv3" in problem.message, "the message should list the valid nodes"


def test_duplicate_node_names():
    config = chain_config()
    config["nodes"].append(make_node("conv2", "conv1"))
    problem = problem_at(validation_problems(config), "nodes[conv2]")
    assert "duplicate" in problem.message, problem.message
    assert "must be unique" in problem.message, problem.message


def test_missing_input_nodes():
    config = chain_config()
    del config["input_nodes"]
    problem = problem_at(validation_problems(config), "input_nodes")
    assert "missing" in problem.message, problem.message
    assert "list the nodes that receive the stimulus" in problem.message, problem.message


def test_unknown_input_node():
    config = chain_config()
    config["input_nodes"] = ["conv1", "retina"]
    problem = problem_at(validation_problems(config), "input_nodes[1]")
    assert "'retina'" in problem.message, problem.message
    assert "conv1, conv2, conv3" in problem.message, "the message should list the valid nodes"


def test_missing_output_node():
    config = chain_config()
    del config["output_node"]
    problem = problem_at(validation_problems(config), "output_node")
    assert "missing" in problem.message, problem.message
    assert "name the node" in problem.message, problem.message


def test_unknown_output_node():
    config = chain_config()
    config["output_node"] = "readout"
    problem = problem_at(validation_problems(config), "output_node")
    assert "'readout'" in problem.message, problem.message
    assert "conv1, conv2, conv3" in problem.message, "the message should list the valid nodes"


def test_unreachable_node():
    config = chain_config()
    config["nodes"].append(make_node("island", "conv1"))
    problem = problem_at(validation_problems(config), "nodes[island]")
    assert "unreachable" in problem.message, problem.message
    assert "add an edge into it" in problem.message, problem.message


def test_shape_from_not_ancestor():
    config = chain_config()
    config["nodes"].append(make_node("side", "conv1"))
    config["edges"].append({"from": "conv1", "to": "side"})
    node_of(config, "conv3")["shape_from"] = "side"
    problem = problem_at(validation_problems(config), "nodes[conv3].shape_from")
    assert "'side' is not a predecessor of 'conv3'" in problem.message, problem.message
    assert "['conv2']" in problem.message, "the message should list the valid predecessors"


def test_shape_from_unknown_node():
    config = chain_config()
    node_of(config, "conv3")["shape_from"] = "conv7"
    problem = problem_at(validation_problems(config), "nodes[conv3].shape_from")
    assert "'conv7'" in problem.message, problem.message
    assert "['conv2']" in problem.message, "the message should list the valid predecessors"


def test_shape_from_grandparent_accepted():
    config = chain_config()
    node_of(config, "conv3")["shape_from"] = "conv1"
    spec = validate_config(config)
    assert spec.topology.shape_from["conv3"] == "conv1"


def test_shape_from_missing():
    config = chain_config()
    node_of(config, "conv3")["shape_from"] = None
    problem = problem_at(validation_problems(config), "nodes[conv3].shape_from")
    assert "missing" in problem.message, problem.message
    assert "['conv2']" in problem.message, "the message should list the valid predecessors"


def test_unknown_node_key():
    config = chain_config()
    node_of(config, "conv3")["shape_form"] = "conv2"
    problem = problem_at(validation_problems(config), "nodes[conv3].shape_form")
    assert "unknown node key" in problem.message, problem.message
    assert "Did you mean 'shape_from'?" in problem.message, problem.message


# -- top-level values ----------------------------------------------------------------


@pytest.mark.parametrize("value", [[3, 6], [3, 6, 0], [3, 6, "6"], "3x6x6", [3, 6, 6, 1]])
def test_input_shape_invalid(value):
    config = chain_config()
    config["input_shape"] = value
    problem = problem_at(validation_problems(config), "input_shape")
    assert "[C, H, W]" in problem.message, problem.message
    assert repr(value) in problem.message, problem.message


@pytest.mark.parametrize("value", [0, -2, 2.5, "5", True])
def test_num_timesteps_invalid(value):
    config = chain_config()
    config["num_timesteps"] = value
    problem = problem_at(validation_problems(config), "num_timesteps")
    assert "positive integer" in problem.message, problem.message
    assert repr(value) in problem.message, problem.message


def test_ff_order_missing_node():
    config = chain_config()
    config["ff_order"] = ["conv1", "conv2"]
    problem = problem_at(validation_problems(config), "ff_order")
    assert "every node exactly once" in problem.message, problem.message
    assert "'conv3'" in problem.message, "the message should name the missing node"


def test_ff_order_unknown_node():
    config = chain_config()
    config["ff_order"] = ["conv1", "conv2", "conv3", "conv4"]
    problem = problem_at(validation_problems(config), "ff_order")
    assert "'conv4'" in problem.message, "the message should name the unknown node"


# -- components --------------------------------------------------------------------


def test_unknown_component():
    config = chain_config()
    node_of(config, "conv3")["recurrent_cell"] = {"name": "GRUcell"}
    with pytest.raises(ComponentNotFoundError) as info:
        validate_config(config)
    problem = problem_at(info.value.problems, "nodes[conv3].recurrent_cell.name")
    assert "'GRUcell'" in problem.message, problem.message
    assert "Did you mean 'GRUCell'" in problem.message, problem.message
    assert "Available recurrent cells:" in problem.message, problem.message
    assert "IdentityCell" in problem.message, "the list of available cells should include IdentityCell"
    assert problem.missing_component == "GRUcell"


def test_unknown_keyword():
    config = chain_config()
    pre = node_of(config, "conv3")["pre_memory"]
    pre["kszie"] = pre.pop("ksize")
    problem = problem_at(validation_problems(config), "nodes[conv3].pre_memory.kszie")
    assert "does not accept 'kszie'" in problem.message, problem.message
    assert "Did you mean 'ksize'?" in problem.message, problem.message
    assert "in_channels" not in problem.message, "the valid keys should leave out what the graph provides"


def test_missing_required_argument():
    config = chain_config()
    del node_of(config, "conv3")["pre_memory"]["ksize"]
    problem = problem_at(validation_problems(config), "nodes[conv3].pre_memory.ksize")
    assert "missing" in problem.message, problem.message
    assert "Conv2dCell needs 'ksize'" in problem.message, problem.message


def test_wrong_argument_type():
    config = chain_config()
    node_of(config, "conv3")["pre_memory"]["ksize"] = "three"
    problem = problem_at(validation_problems(config), "nodes[conv3].pre_memory.ksize")
    assert "expected int" in problem.message, problem.message
    assert "'three'" in problem.message, problem.message


def test_component_spec_without_name():
    config = chain_config()
    node_of(config, "conv3")["pre_memory"] = {"out_channels": 2, "ksize": 3}
    problem = problem_at(validation_problems(config), "nodes[conv3].pre_memory.name")
    assert "'name' key" in problem.message, problem.message


def test_nested_residual_add_path():
    config = chain_config()
    node = node_of(config, "conv3")
    node["residual"] = True
    node["post_memory"] = {
        "name": "ResidualAdd",
        "feedforward_func_kwargs": {"name": "Conv2dCell", "out_channels": 2, "kszie": 3},
    }
    problems = validation_problems(config)
    problem = problem_at(problems, "nodes[conv3].post_memory.feedforward_func_kwargs.kszie")
    assert "Did you mean 'ksize'?" in problem.message, problem.message


def test_nested_sequential_path():
    config = chain_config()
    node_of(config, "conv3")["post_memory"] = {
        "name": "Sequential",
        "list_of_func_kwargs": [{"name": "Identity"}, {"name": "Conv2dCell", "out_channels": 2, "ksize": "three"}],
    }
    problem = problem_at(validation_problems(config), "nodes[conv3].post_memory.list_of_func_kwargs[1].ksize")
    assert "'three'" in problem.message, problem.message


def test_nested_unknown_component_path():
    config = chain_config()
    node_of(config, "conv3")["post_memory"] = {"name": "Sequential", "list_of_func_kwargs": [{"name": "MaxPul"}]}
    problem = problem_at(validation_problems(config), "nodes[conv3].post_memory.list_of_func_kwargs[0].name")
    assert "Did you mean 'MaxPool'?" in problem.message, problem.message


# -- checks that need the built shapes ------------------------------------------------


def test_out_channels_contradiction():
    config = chain_config()
    node_of(config, "conv3")["out_channels"] = 5
    problem = problem_at(build_problems(config), "nodes[conv3].out_channels")
    assert "is 5" in problem.message, problem.message
    assert "2 channels" in problem.message, problem.message
    assert "make them match" in problem.message, problem.message


def test_residual_without_residual_op():
    config = chain_config()
    node_of(config, "conv3")["residual"] = True
    problem = problem_at(build_problems(config), "nodes[conv3].residual")
    assert "'Identity'" in problem.message, problem.message
    assert "use ResidualAdd or set residual to false" in problem.message, problem.message


def test_in_channels_contradiction():
    config = chain_config()
    node_of(config, "conv3")["pre_memory"]["in_channels"] = 7
    problem = problem_at(build_problems(config), "nodes[conv3].pre_memory.in_channels")
    assert "in_channels=7" in problem.message, problem.message
    assert "gives 2" in problem.message, problem.message
    assert "remove the key or make it match" in problem.message, problem.message


def test_in_channels_matching_accepted():
    config = chain_config()
    node_of(config, "conv3")["pre_memory"]["in_channels"] = 2
    graph = TemporalGraph(config)
    assert graph.nodes["conv3"].pre_memory.conv.in_channels == 2


# -- reporting ---------------------------------------------------------------------


def test_all_problems_reported():
    config = chain_config()
    config["edges"][1]["to"] = "conv9"
    config["input_shape"] = [3]
    node_of(config, "conv1")["recurrent_cell"] = {"name": "NoSuchCell"}
    node_of(config, "conv2")["pre_memory"]["kszie"] = 3
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    wheres = [p.where for p in info.value.problems]
    assert len(info.value.problems) == 4, wheres
    assert "edges[1].to" in wheres
    assert "input_shape" in wheres
    assert "nodes[conv1].recurrent_cell.name" in wheres
    assert "nodes[conv2].pre_memory.kszie" in wheres
    assert "4 problems" in str(info.value), str(info.value)


def test_config_dict_not_mutated():
    config = chain_config()
    node_of(config, "conv2")["pre_memory"]["init_dict"] = {"method": "kaiming_normal_", "nonlinearity": "relu"}
    node_of(config, "conv3")["post_memory"] = {
        "name": "Sequential",
        "list_of_func_kwargs": [{"name": "Conv2dCell", "out_channels": 2, "ksize": [3, 3], "padding": 1}],
    }
    before = copy.deepcopy(config)
    TemporalGraph(config)
    assert config == before, "building a graph changed the caller's config"
    TemporalGraph(config)
    assert config == before, "building a second graph changed the caller's config"


def test_invalid_config_not_mutated():
    config = chain_config()
    del config["output_node"]
    before = copy.deepcopy(config)
    with pytest.raises(ConfigError):
        TemporalGraph(config)
    assert config == before


def test_build_twice_from_one_dict():
    config = chain_config()
    first = TemporalGraph(config)
    second = TemporalGraph(config)
    assert list(first.state_dict()) == list(second.state_dict())
    assert first.node_info["conv3"].output_shape == second.node_info["conv3"].output_shape == (2, 6, 6)


# -- files ---------------------------------------------------------------------------


def test_json_file_loads(tmp_path: Path):
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(chain_config()), encoding="utf-8")
    graph = TemporalGraph(path)
    assert graph.node_names == ["conv1", "conv2", "conv3"]
    assert graph.spec.source == str(path)


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_file_loads(tmp_path: Path, suffix: str):
    path = tmp_path / f"chain{suffix}"
    path.write_text(yaml.safe_dump(chain_config()), encoding="utf-8")
    graph = TemporalGraph(str(path))
    assert graph.node_names == ["conv1", "conv2", "conv3"]
    assert graph.input_shape == (3, 6, 6)


def test_missing_file(tmp_path: Path):
    path = tmp_path / "absent.json"
    with pytest.raises(ConfigError) as info:
        TemporalGraph(path)
    assert str(path) in str(info.value), str(info.value)
    assert "not found" in str(info.value), str(info.value)


def test_invalid_json_names_line(tmp_path: Path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "nodes": [\n    {"name": "a",}\n  ]\n}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        validate_config(path)
    assert str(path) in str(info.value), str(info.value)
    assert "invalid JSON" in str(info.value), str(info.value)
    assert "line 3" in str(info.value), str(info.value)


def test_invalid_yaml_names_line(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("nodes:\n  - name: a\n    shape_from: [conv1\n  - name: b\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        validate_config(path)
    assert str(path) in str(info.value), str(info.value)
    assert "invalid YAML" in str(info.value), str(info.value)
    assert "line 4" in str(info.value), str(info.value)


def test_invalid_file_message_names_source(tmp_path: Path):
    config = chain_config()
    config["num_timesteps"] = 0
    path = tmp_path / "bad_steps.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        validate_config(path)
    assert info.value.source == str(path)
    assert str(path) in str(info.value), str(info.value)


def test_unknown_shape_from_reported_with_bad_edge():
    config = chain_config()
    config["edges"][1]["to"] = "conv9"
    node_of(config, "conv2")["shape_from"] = "conv7"
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    wheres = [p.where for p in info.value.problems]
    assert "edges[1].to" in wheres
    assert "nodes[conv2].shape_from" in wheres, wheres


def test_near_miss_key_not_also_missing():
    config = chain_config()
    spec = node_of(config, "conv2")["pre_memory"]
    spec["kszie"] = spec.pop("ksize")
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    wheres = [p.where for p in info.value.problems]
    assert wheres == ["nodes[conv2].pre_memory.kszie"], wheres
