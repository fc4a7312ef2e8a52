"""Numeric parity with PyTorchTNN recordings: whole graphs, both unroll modes, every node and step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import PARITY_DIR, parity_tolerance
from tnn_core import ComponentNotFoundError, TemporalGraph
from tnn_core.compat import load_ptnn_state_dict

CASES = sorted(p.parent.name for p in PARITY_DIR.glob("*/case.pt")) if PARITY_DIR.is_dir() else []
FACT_CASES = sorted(p.parent.name for p in PARITY_DIR.glob("*/facts.json")) if PARITY_DIR.is_dir() else []


def _load_case(parity_dir: Path, name: str) -> dict:
    case = torch.load(parity_dir / name / "case.pt", weights_only=True)
    extra = case.get("activations_all_file")
    if extra:  # e.g. "activations_all.pt holds: bio_activations_all, full_activations_all"
        case.update(torch.load(parity_dir / name / extra.split()[0], weights_only=True))
    return case


def _build(config: dict, **kwargs) -> TemporalGraph:
    try:
        return TemporalGraph(config, **kwargs)
    except ComponentNotFoundError as exc:
        pytest.xfail(f"needs a component that is not installed: {exc}")


def _float_state(state_dict: dict, dtype: torch.dtype) -> dict:
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state_dict.items()}


def _close(actual: torch.Tensor, expected: torch.Tensor, what: str, **tol) -> None:
    tol = tol or parity_tolerance(expected)
    torch.testing.assert_close(actual.to(expected.dtype), expected, msg=lambda m: f"{what}: {m}", **tol)


@pytest.fixture(scope="module", params=CASES or ["<no recordings>"])
def case_and_graph(request, parity_dir):
    case = _load_case(parity_dir, request.param)
    config = case["config"]
    original = json.dumps(config, sort_keys=True)
    graph = _build(config)
    assert json.dumps(config, sort_keys=True) == original, "building the graph modified the config dict"
    load_ptnn_state_dict(graph, _float_state(case["state_dict"], torch.float32))
    graph.eval()
    return case, graph


def test_biological_5d_matches(case_and_graph):
    case, graph = case_and_graph
    with torch.no_grad():
        out = graph(case["input5d"].float(), n_times=case["n_times"], return_all=True)
    _close(out, case["bio_out_all_5d"], "biological unroll, 5-D input")


def test_biological_4d_matches(case_and_graph):
    case, graph = case_and_graph
    with torch.no_grad():
        out = graph(case["input4d"].float(), n_times=case["n_times"], return_all=True)
    _close(out, case["bio_out_all_4d"], "biological unroll, 4-D input")


def test_full_unroll_matches(case_and_graph):
    case, graph = case_and_graph
    with torch.no_grad():
        out5 = graph.full_unroll(case["input5d"].float(), n_times=case["n_times"], return_all=True)
        out4 = graph.full_unroll(case["input4d"].float(), n_times=case["n_times"], return_all=True)
    _close(out5, case["full_out_all_5d"], "full unroll, 5-D input")
    _close(out4, case["full_out_all_4d"], "full unroll, 4-D input")


def test_last_step_equals_return_all(case_and_graph):
    case, graph = case_and_graph
    with torch.no_grad():
        last = graph(case["input5d"].float(), n_times=case["n_times"])
    _close(last, case["bio_out_all_5d"][:, -1], "return_all=False")


def test_activations_match_every_node_and_step(case_and_graph):
    case, graph = case_and_graph
    with torch.no_grad():
        _, bio = graph(case["input5d"].float(), n_times=case["n_times"], return_activations=True)
        _, bio4 = graph(case["input4d"].float(), n_times=case["n_times"], return_activations=True)
        _, full = graph.full_unroll(case["input5d"].float(), n_times=case["n_times"], return_activations=True)
    last = case["n_times"] - 1
    for node, expected in case["bio_activations_last"].items():
        _close(bio[last][node], expected, f"biological activation of {node} at the last step")
    for node, expected in case["bio4d_activations_last"].items():
        _close(bio4[last][node], expected, f"biological 4-D activation of {node} at the last step")
    for node, expected in case["full_activations_last"].items():
        _close(full[last][node], expected, f"full-unroll activation of {node} at the last step")
    for key, ours in (("bio_activations_all", bio), ("full_activations_all", full)):
        for t, per_node in case.get(key, {}).items():
            for node, expected in per_node.items():
                _close(ours[int(t)][node], expected, f"{key}: {node} at step {t}")


def test_float64_matches(case_and_graph):
    case, _ = case_and_graph
    graph = _build(case["config"]).double()
    load_ptnn_state_dict(graph, _float_state(case["state_dict"], torch.float64))
    graph.eval()
    with torch.no_grad():
        bio5 = graph(case["input5d"].double(), n_times=case["n_times"], return_all=True)
        bio4 = graph(case["input4d"].double(), n_times=case["n_times"], return_all=True)
        full5 = graph.full_unroll(case["input5d"].double(), n_times=case["n_times"], return_all=True)
    _close(bio5, case["bio_out_all_5d_f64"], "float64 biological 5-D", **parity_tolerance(case["bio_out_all_5d_f64"], float64=True))
    _close(bio4, case["bio_out_all_4d_f64"], "float64 biological 4-D", **parity_tolerance(case["bio_out_all_4d_f64"], float64=True))
    _close(full5, case["full_out_all_5d_f64"], "float64 full 5-D", **parity_tolerance(case["full_out_all_5d_f64"], float64=True))


def test_train_mode_batch_norm_matches(case_and_graph):
    case, _ = case_and_graph
    record = case.get("train_mode")
    if record is None:
        pytest.skip(f"{case['case_name']} has no batch norm, so no train-mode recording")
    graph = _build(case["config"])
    load_ptnn_state_dict(graph, _float_state(case["state_dict"], torch.float32))
    graph.train()
    with torch.no_grad():
        out = graph(case["input5d"].float(), n_times=case["n_times"], return_all=True)
    _close(out, record["bio_out_all_5d"], "train-mode biological unroll", **parity_tolerance(record["bio_out_all_5d"], train_mode=True))
    converted_buffers = {k.replace("._", ".", 1): v for k, v in record["bn_buffers_after"].items()}
    state = graph.state_dict()
    for key, expected in record["bn_buffers_after"].items():
        node, _, rest = key.partition(".")
        ours = state[f"nodes.{node}.{rest.lstrip('_')}"]
        if expected.is_floating_point():
            _close(ours, expected.float(), f"batch-norm buffer {key}", **parity_tolerance(expected.float(), train_mode=True))
        else:
            assert int(ours) == int(expected), f"{key}: {int(ours)} != {int(expected)}"
    assert converted_buffers  # the recording lists buffers


@pytest.mark.parametrize("name", FACT_CASES or ["<no recordings>"])
def test_full_size_structure_matches_facts(name, parity_dir):
    facts = json.loads((parity_dir / name / "facts.json").read_text())
    config = json.loads((parity_dir / name / "original_config.json").read_text())
    graph = _build(config, input_shape=facts["input_shape_used"], num_timesteps=facts["num_timesteps_ctor"])

    total = sum(p.numel() for p in graph.parameters())
    trainable = sum(p.numel() for p in graph.parameters() if p.requires_grad)
    assert total == facts["total_params_after_forward"], f"{name}: {total} parameters, PyTorchTNN has {facts['total_params_after_forward']}"
    assert trainable == facts["trainable_params_after_forward"]
    for node, node_facts in facts["nodes"].items():
        assert list(graph.node_info[node].output_shape) == list(node_facts["output_shape"]), f"output shape of {node}"
        params = sum(p.numel() for p in graph.nodes[node].parameters())
        assert params == node_facts["params"], f"parameters of {node}: {params} != {node_facts['params']}"
