"""Tests of the built-in memory ops: shapes, parameters, state-dict names, errors and PyTorchTNN parity."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.conftest import parity_tolerance
from tnn_cells.memory_ops.activation import ActivationLayer
from tnn_cells.memory_ops.convolution import Conv2dCell
from tnn_cells.memory_ops.fully_connected import FullyConnected
from tnn_cells.memory_ops.pooling import AdaptiveAvgPool, MaxPool
from tnn_cells.memory_ops.residual_add import ResidualAdd
from tnn_cells.memory_ops.sequential import Sequential
from tnn_core.building import build_component
from tnn_core.errors import ConfigError
from tnn_core.layers import max_timesteps_of


def build_op(spec: dict, **provided) -> nn.Module:
    """Build a memory op through the entry-point registry, as the graph does."""
    return build_component("memory_op", spec, where="nodes[n].pre_memory", provided=provided)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# Conv2dCell


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"ksize": 3}, (8, 14, 14)),
        ({"ksize": 3, "padding": 1}, (8, 16, 16)),
        ({"ksize": [3, 5], "padding": [1, 2]}, (8, 16, 16)),
        ({"ksize": 3, "padding": "same"}, (8, 16, 16)),
        ({"ksize": 3, "padding": "valid"}, (8, 14, 14)),
        ({"ksize": 7, "stride": 2, "padding": 3}, (8, 8, 8)),
        ({"ksize": 3, "dilation": 2, "padding": 2}, (8, 16, 16)),
        ({"ksize": 1, "groups": 4}, (8, 16, 16)),
    ],
)
def test_conv2dcell_output_shape(kwargs, expected):
    op = build_op({"name": "Conv2dCell", "out_channels": 8, **kwargs}, in_channels=4, input_shape=(4, 16, 16))

    output = op(torch.randn(2, 4, 16, 16))

    assert tuple(output.shape) == (2, *expected)


def test_conv2dcell_resnet_stem_parameter_count():
    op = Conv2dCell(in_channels=3, out_channels=64, ksize=7, stride=2, padding=3, use_bias=False, batchnorm=64)

    # conv 64*3*7*7 = 9408 plus batch-norm weight and bias 2*64.
    assert count_parameters(op) == 9536
    assert count_parameters(op.conv) == 9408


def test_conv2dcell_state_dict_keys_static_bn():
    op = Conv2dCell(in_channels=3, out_channels=4, ksize=3, batchnorm=4)

    keys = list(op.state_dict())

    assert keys == [
        "conv.weight",
        "conv.bias",
        "bn.weight",
        "bn.bias",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
    ]


def test_conv2dcell_state_dict_keys_without_bn():
    op = Conv2dCell(in_channels=3, out_channels=4, ksize=3, use_bias=False)

    assert list(op.state_dict()) == ["conv.weight"]


def test_conv2dcell_timevary_bn_keys_and_limit():
    op = Conv2dCell(in_channels=2, out_channels=3, ksize=1, batchnorm=3, batchnorm_timevary=True, num_timesteps=4)

    keys = [k for k in op.state_dict() if k.endswith(".weight") and k.startswith("bns.")]

    assert keys == ["bns.0.weight", "bns.1.weight", "bns.2.weight", "bns.3.weight"]
    assert max_timesteps_of(op) == 4
    assert not hasattr(op, "bn")


def test_conv2dcell_timevary_bn_uses_step_norm():
    op = Conv2dCell(in_channels=2, out_channels=3, ksize=1, batchnorm=3, batchnorm_timevary=True, num_timesteps=4)
    op.train()

    op(torch.randn(4, 2, 5, 5), curr_timestep=2)

    tracked = [int(bn.num_batches_tracked) for bn in op.bns]
    assert tracked == [0, 0, 1, 0]


def test_conv2dcell_timevary_bn_output_matches_step_norm():
    op = Conv2dCell(in_channels=2, out_channels=3, ksize=1, batchnorm=3, batchnorm_timevary=True, num_timesteps=3)
    for step, bn in enumerate(op.bns):
        with torch.no_grad():
            bn.weight.fill_(float(step + 1))
    op.eval()
    x = torch.randn(2, 2, 4, 4)

    outputs = [op(x, curr_timestep=step) for step in range(3)]

    assert torch.allclose(outputs[1], 2 * outputs[0], atol=1e-6)
    assert torch.allclose(outputs[2], 3 * outputs[0], atol=1e-6)


def test_conv2dcell_timevary_bn_past_limit_raises():
    op = Conv2dCell(in_channels=2, out_channels=3, ksize=1, batchnorm=3, batchnorm_timevary=True, num_timesteps=2)

    with pytest.raises(IndexError, match="time step 2"):
        op(torch.randn(2, 2, 4, 4), curr_timestep=2)


def test_conv2dcell_timevary_bn_needs_timestep():
    op = Conv2dCell(in_channels=2, out_channels=3, ksize=1, batchnorm=3, batchnorm_timevary=True, num_timesteps=2)

    with pytest.raises(ValueError, match="curr_timestep"):
        op(torch.randn(2, 2, 4, 4))


def test_conv2dcell_timevary_bn_needs_num_timesteps():
    with pytest.raises(ValueError, match="num_timesteps"):
        Conv2dCell(in_channels=2, out_channels=3, ksize=1, batchnorm=3, batchnorm_timevary=True)


def test_conv2dcell_timevary_without_bn_has_no_norm_keys():
    op = Conv2dCell(in_channels=2, out_channels=3, ksize=1, batchnorm_timevary=True, num_timesteps=2)

    assert list(op.state_dict()) == ["conv.weight", "conv.bias"]
    assert max_timesteps_of(op) is None


def test_conv2dcell_init_dict_applied_and_not_mutated():
    init_dict = {"method": "constant_", "val": 0.25}
    original = copy.deepcopy(init_dict)

    first = Conv2dCell(in_channels=2, out_channels=3, ksize=3, init_dict=init_dict, bias=0.5)
    second = Conv2dCell(in_channels=3, out_channels=3, ksize=1, init_dict=init_dict)

    assert init_dict == original
    assert torch.all(first.conv.weight == 0.25)
    assert torch.all(first.conv.bias == 0.5)
    assert torch.all(second.conv.weight == 0.25)


def test_conv2dcell_init_dict_through_config_not_mutated():
    spec = {"name": "Conv2dCell", "out_channels": 3, "ksize": 1, "init_dict": {"method": "ones_"}}
    original = copy.deepcopy(spec)

    first = build_op(spec, in_channels=2)
    second = build_op(spec, in_channels=2)

    assert spec == original
    assert torch.all(first.conv.weight == 1)
    assert torch.all(second.conv.weight == 1)


def test_conv2dcell_dropout_only_in_train_mode():
    torch.manual_seed(0)
    op = Conv2dCell(in_channels=8, out_channels=1, ksize=1, use_bias=False, init_dict={"method": "ones_"}, dropout=0.5)
    x = torch.ones(4, 8, 6, 6)

    op.eval()
    eval_output = op(x)
    op.train()
    train_output = op(x)

    assert torch.all(eval_output == 8)
    assert not torch.all(train_output == 8)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ksize": 0}, "ksize"),
        ({"ksize": [3, 3, 3]}, "ksize"),
        ({"ksize": 3, "stride": 0}, "stride"),
        ({"ksize": 3, "padding": -1}, "padding"),
        ({"ksize": 3, "padding": "full"}, "'full'.*'same', 'valid'"),
        ({"ksize": 3, "padding": "same", "stride": 2}, "'same' needs stride 1"),
        ({"ksize": 3, "padding_mode": "mirror"}, "'mirror'.*zeros, reflect, replicate, circular"),
        ({"ksize": 3, "groups": 3}, "groups=3"),
        ({"ksize": 3, "batchnorm": 5}, "batchnorm.*4.*5"),
        ({"ksize": 3, "use_bias": False, "bias": 0.1}, "use_bias"),
        ({"ksize": 3, "activation": "Relu"}, "'Relu'"),
        ({"ksize": 3, "dropout": 1.5}, "dropout.*1.5"),
        ({"ksize": 3, "init_dict": {"method": "not_a_method_"}}, "not_a_method_"),
    ],
)
def test_conv2dcell_invalid_values_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conv2dCell(in_channels=2, out_channels=4, **kwargs)


def test_conv2dcell_config_error_names_key_path():
    spec = {"name": "Conv2dCell", "out_channels": 4, "ksize": "3"}

    with pytest.raises(ConfigError, match=r"nodes\[n\]\.pre_memory\.ksize"):
        build_op(spec, in_channels=2)


def test_conv2dcell_rejects_unknown_key():
    spec = {"name": "Conv2dCell", "out_channels": 4, "kszie": 3}

    with pytest.raises(ConfigError, match="Did you mean 'ksize'"):
        build_op(spec, in_channels=2)


# Pooling


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"ksize": 2}, (3, 8, 8)),
        ({"ksize": 3, "stride": 2, "padding": 1}, (3, 8, 8)),
        ({"ksize": 3, "stride": 1}, (3, 14, 14)),
        ({"ksize": 3, "stride": 2, "ceil_mode": True}, (3, 8, 8)),
        ({"ksize": [2, 4]}, (3, 8, 4)),
    ],
)
def test_maxpool_output_shape(kwargs, expected):
    op = build_op({"name": "MaxPool", **kwargs})

    output = op(torch.randn(2, 3, 16, 16))

    assert tuple(output.shape) == (2, *expected)


def test_maxpool_matches_torch():
    op = MaxPool(ksize=3, stride=2, padding=1)
    x = torch.randn(2, 3, 9, 9)

    expected = torch.nn.functional.max_pool2d(x, 3, 2, 1)

    assert torch.equal(op(x), expected)


def test_maxpool_rejects_return_indices():
    with pytest.raises(ValueError, match="return_indices"):
        MaxPool(ksize=2, return_indices=True)


def test_maxpool_rejects_large_padding():
    with pytest.raises(ValueError, match="half of ksize"):
        MaxPool(ksize=2, padding=2)


def test_adaptive_avg_pool_shapes():
    x = torch.randn(2, 5, 7, 9)

    pooled = AdaptiveAvgPool(output_size=[2, 3])(x)
    flat = AdaptiveAvgPool(output_size=1, flatten=True)(x)
    default = AdaptiveAvgPool()(x)

    assert tuple(pooled.shape) == (2, 5, 2, 3)
    assert tuple(flat.shape) == (2, 5)
    assert tuple(default.shape) == (2, 5, 6, 6)
    assert torch.allclose(flat, x.mean(dim=(2, 3)))


# FullyConnected


def test_fully_connected_parameter_count():
    op = build_op({"name": "FullyConnected", "out_channels": 1000}, in_channels=512, input_shape=(512, 1, 1))

    assert count_parameters(op) == 513000
    assert list(op.state_dict()) == ["lin.weight", "lin.bias"]


def test_fully_connected_parameters_exist_after_construction():
    op = FullyConnected(input_shape=(4, 3, 3), out_channels=5)

    assert all(not isinstance(p, nn.parameter.UninitializedParameter) for p in op.parameters())
    assert tuple(op.lin.weight.shape) == (5, 36)


def test_fully_connected_flattens_maps():
    op = FullyConnected(input_shape=(4, 3, 3), out_channels=5, activation=None)
    x = torch.randn(2, 4, 3, 3)

    output = op(x)

    assert tuple(output.shape) == (2, 5)
    assert torch.allclose(output, x.flatten(1) @ op.lin.weight.T + op.lin.bias)


def test_fully_connected_default_activation_is_relu():
    torch.manual_seed(0)
    op = FullyConnected(input_shape=(16,), out_channels=32)

    output = op(torch.randn(8, 16))

    assert isinstance(op.activation, nn.ReLU)
    assert torch.all(output >= 0)


def test_fully_connected_without_activation_keeps_negatives():
    torch.manual_seed(0)
    op = FullyConnected(input_shape=(16,), out_channels=32, activation=None)

    output = op(torch.randn(8, 16))

    assert torch.any(output < 0)


def test_fully_connected_bn_keys():
    static = FullyConnected(input_shape=(6,), out_channels=4, batchnorm=4)
    timevary = FullyConnected(input_shape=(6,), out_channels=4, batchnorm=4, batchnorm_timevary=True, num_timesteps=2)

    assert "bn.running_mean" in static.state_dict()
    assert isinstance(static.bn, nn.BatchNorm1d)
    assert "bns.1.running_mean" in timevary.state_dict()
    assert max_timesteps_of(timevary) == 2


def test_fully_connected_timevary_bn_past_limit_raises():
    op = FullyConnected(input_shape=(6,), out_channels=4, batchnorm=4, batchnorm_timevary=True, num_timesteps=2)

    with pytest.raises(IndexError):
        op(torch.randn(3, 6), curr_timestep=5)


def test_fully_connected_init_dict_and_bias():
    init_dict = {"method": "constant_", "val": 0.1}

    op = FullyConnected(input_shape=(3,), out_channels=2, init_dict=init_dict, bias=-1.0)

    assert init_dict == {"method": "constant_", "val": 0.1}
    assert torch.all(op.lin.weight == 0.1)
    assert torch.all(op.lin.bias == -1.0)


def test_fully_connected_dropout_only_in_train_mode():
    torch.manual_seed(0)
    op = FullyConnected(input_shape=(64,), out_channels=1, init_dict={"method": "ones_"}, use_bias=False, dropout=0.5, activation=None)
    x = torch.ones(4, 64)

    op.eval()
    eval_output = op(x)
    op.train()
    train_output = op(x)

    assert torch.all(eval_output == 64)
    assert not torch.all(train_output == 64)


def test_fully_connected_wrong_input_size_raises():
    op = FullyConnected(input_shape=(4, 2, 2), out_channels=3)

    with pytest.raises(ValueError, match="16 input features"):
        op(torch.randn(2, 4, 3, 3))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batchnorm": 3}, "batchnorm"),
        ({"out_channels": 0}, "out_channels"),
        ({"use_bias": False, "bias": 0.0}, "use_bias"),
        ({"dropout": -0.1}, "dropout"),
    ],
)
def test_fully_connected_invalid_values_raise(kwargs, message):
    arguments = {"input_shape": (4,), "out_channels": 5, **kwargs}

    with pytest.raises(ValueError, match=message):
        FullyConnected(**arguments)


# Identity and ActivationLayer


def test_identity_returns_input():
    op = build_op({"name": "Identity"}, in_channels=3)
    x = torch.randn(2, 3, 4, 4)

    assert op(x, curr_timestep=1) is x
    assert list(op.state_dict()) == []


def test_activation_layer_default_relu():
    op = ActivationLayer()
    x = torch.randn(3, 4)

    assert torch.equal(op(x), torch.relu(x))


def test_activation_layer_kwargs():
    op = build_op({"name": "ActivationLayer", "activation": "LeakyReLU", "activation_func_kwargs": {"negative_slope": 0.5}})

    output = op(torch.tensor([-2.0, 2.0]))

    assert output.tolist() == [-1.0, 2.0]


def test_activation_layer_invalid_kwargs_raise():
    with pytest.raises(ValueError, match="activation_func_kwargs"):
        ActivationLayer("ReLU", {"slope": 1.0})


# ResidualAdd


def residual_block_spec(with_projection: bool) -> dict:
    spec = {
        "name": "ResidualAdd",
        "feedforward_func_kwargs": {
            "name": "Conv2dCell",
            "out_channels": 8,
            "ksize": 3,
            "stride": 1,
            "padding": 1,
            "use_bias": False,
            "batchnorm": 8,
            "batchnorm_timevary": True,
        },
        "residual_func_kwargs": None,
        "activation": "ReLU",
    }
    if with_projection:
        spec["residual_func_kwargs"] = {
            "name": "Conv2dCell",
            "out_channels": 8,
            "ksize": 1,
            "stride": 2,
            "use_bias": False,
            "batchnorm": 8,
            "batchnorm_timevary": True,
        }
    return spec


def build_residual(spec: dict, input_shape=(8, 4, 4), residual_shape=(4, 8, 8)) -> nn.Module:
    return build_component(
        "memory_op",
        spec,
        where="nodes[block].post_memory",
        provided={
            "in_channels": input_shape[0],
            "input_shape": input_shape,
            "num_timesteps": 3,
            "residual_shape": residual_shape,
        },
    )


def test_residual_add_projection_keys_and_shape():
    op = build_residual(residual_block_spec(with_projection=True))

    output = op(torch.randn(2, 8, 4, 4), residual=torch.randn(2, 4, 8, 8), curr_timestep=1)
    keys = list(op.state_dict())

    assert tuple(output.shape) == (2, 8, 4, 4)
    assert "feedforward.conv.weight" in keys
    assert "feedforward.bns.2.running_var" in keys
    assert "residual.conv.weight" in keys
    assert "residual.bns.0.weight" in keys
    assert tuple(op.residual.conv.weight.shape) == (8, 4, 1, 1)
    assert max_timesteps_of(op) == 3


def test_residual_add_identity_residual_math():
    spec = residual_block_spec(with_projection=False)
    op = build_residual(spec, input_shape=(8, 4, 4), residual_shape=(8, 4, 4))
    op.eval()
    x = torch.randn(2, 8, 4, 4)
    residual = torch.randn(2, 8, 4, 4)

    output = op(x, residual=residual, curr_timestep=0)
    expected = torch.relu(op.feedforward(x, curr_timestep=0) + residual)

    assert torch.allclose(output, expected)
    assert not any(k.startswith("residual.") for k in op.state_dict())


def test_residual_add_passes_timestep_to_branches():
    op = build_residual(residual_block_spec(with_projection=True))
    op.train()

    op(torch.randn(2, 8, 4, 4), residual=torch.randn(2, 4, 8, 8), curr_timestep=2)

    assert [int(bn.num_batches_tracked) for bn in op.feedforward.bns] == [0, 0, 1]
    assert [int(bn.num_batches_tracked) for bn in op.residual.bns] == [0, 0, 1]


def test_residual_add_does_not_mutate_spec():
    spec = residual_block_spec(with_projection=True)
    original = copy.deepcopy(spec)

    build_residual(spec)
    build_residual(spec)

    assert spec == original


def test_residual_add_shape_mismatch_raises_at_construction():
    spec = residual_block_spec(with_projection=False)

    with pytest.raises(ConfigError, match=r"nodes\[block\]\.post_memory.*different shapes.*\[8, 4, 4\]"):
        build_residual(spec, input_shape=(8, 4, 4), residual_shape=(4, 8, 8))


def test_residual_add_without_residual_shape_raises():
    spec = residual_block_spec(with_projection=False)

    with pytest.raises(ConfigError, match="residual_shape is missing"):
        build_op(spec, in_channels=8, input_shape=(8, 4, 4), num_timesteps=3)


def test_residual_add_forward_without_residual_raises():
    op = build_residual(residual_block_spec(with_projection=True))

    with pytest.raises(ValueError, match="residual"):
        op(torch.randn(2, 8, 4, 4), curr_timestep=0)


def test_residual_add_nested_error_has_key_path():
    spec = residual_block_spec(with_projection=True)
    spec["feedforward_func_kwargs"]["kszie"] = 3

    with pytest.raises(ConfigError, match=r"nodes\[block\]\.post_memory\.feedforward_func_kwargs\.kszie"):
        build_residual(spec)


def test_residual_add_nested_value_error_has_key_path():
    spec = residual_block_spec(with_projection=True)
    spec["residual_func_kwargs"]["padding"] = "full"

    with pytest.raises(ConfigError, match=r"nodes\[block\]\.post_memory\.residual_func_kwargs: Conv2dCell"):
        build_residual(spec)


def test_residual_add_nested_specs():
    spec = residual_block_spec(with_projection=True)
    kwargs = {k: v for k, v in spec.items() if k != "name"}

    nested = ResidualAdd.nested_specs(kwargs)

    assert nested == [
        ("memory_op", "feedforward_func_kwargs", spec["feedforward_func_kwargs"]),
        ("memory_op", "residual_func_kwargs", spec["residual_func_kwargs"]),
    ]


def test_residual_add_nested_specs_without_residual():
    spec = residual_block_spec(with_projection=False)
    kwargs = {k: v for k, v in spec.items() if k != "name"}

    nested = ResidualAdd.nested_specs(kwargs)

    assert [path for _, path, _ in nested] == ["feedforward_func_kwargs"]


# Sequential


def readout_spec() -> dict:
    return {
        "name": "Sequential",
        "list_of_func_kwargs": [
            {"name": "AdaptiveAvgPool", "output_size": [1, 1]},
            {"name": "FullyConnected", "out_channels": 10, "activation": None, "batchnorm": None},
        ],
    }


def test_sequential_keys_and_inferred_shapes():
    op = build_op(readout_spec(), in_channels=16, input_shape=(16, 5, 5), num_timesteps=2)

    output = op(torch.randn(2, 16, 5, 5), curr_timestep=0)

    assert tuple(output.shape) == (2, 10)
    assert list(op.state_dict()) == ["sequential_mem.1.lin.weight", "sequential_mem.1.lin.bias"]
    assert tuple(op.sequential_mem[1].lin.weight.shape) == (10, 16)


def test_sequential_matches_manual_chain():
    op = build_op(readout_spec(), in_channels=16, input_shape=(16, 5, 5))
    x = torch.randn(2, 16, 5, 5)

    expected = op.sequential_mem[1](op.sequential_mem[0](x))

    assert torch.equal(op(x), expected)


def test_sequential_passes_channels_to_later_ops():
    spec = {
        "name": "Sequential",
        "list_of_func_kwargs": [
            {"name": "Conv2dCell", "out_channels": 6, "ksize": 3, "stride": 2, "padding": 1},
            {"name": "Conv2dCell", "out_channels": 5, "ksize": 1, "batchnorm": 5, "batchnorm_timevary": True},
            {"name": "MaxPool", "ksize": 2},
        ],
    }

    op = build_op(spec, in_channels=3, input_shape=(3, 8, 8), num_timesteps=4)
    output = op(torch.randn(2, 3, 8, 8), curr_timestep=3)

    assert tuple(op.sequential_mem[1].conv.weight.shape) == (5, 6, 1, 1)
    assert tuple(output.shape) == (2, 5, 2, 2)
    assert max_timesteps_of(op) == 4


def test_sequential_shape_inference_leaves_bn_untouched():
    spec = {
        "name": "Sequential",
        "list_of_func_kwargs": [
            {"name": "Conv2dCell", "out_channels": 4, "ksize": 1, "batchnorm": 4},
            {"name": "FullyConnected", "out_channels": 3},
        ],
    }
    op = build_op(spec, in_channels=2, input_shape=(2, 3, 3))

    assert int(op.sequential_mem[0].bn.num_batches_tracked) == 0
    assert torch.all(op.sequential_mem[0].bn.running_mean == 0)
    assert tuple(op.sequential_mem[1].lin.weight.shape) == (3, 36)


def test_sequential_nested_error_has_key_path():
    spec = readout_spec()
    spec["list_of_func_kwargs"][1]["out_chanels"] = 10

    with pytest.raises(ConfigError, match=r"nodes\[n\]\.pre_memory\.list_of_func_kwargs\[1\]\.out_chanels"):
        build_op(spec, in_channels=16, input_shape=(16, 5, 5))


def test_sequential_nested_unknown_name_has_key_path():
    spec = readout_spec()
    spec["list_of_func_kwargs"][0]["name"] = "AvgPool"

    with pytest.raises(ConfigError, match=r"list_of_func_kwargs\[0\]\.name"):
        build_op(spec, in_channels=16, input_shape=(16, 5, 5))


def test_sequential_empty_list_raises():
    with pytest.raises(ValueError, match="non-empty"):
        Sequential(list_of_func_kwargs=[])


def test_sequential_does_not_mutate_spec():
    spec = readout_spec()
    original = copy.deepcopy(spec)

    build_op(spec, in_channels=16, input_shape=(16, 5, 5), num_timesteps=2)

    assert spec == original


def test_sequential_nested_specs():
    spec = readout_spec()

    nested = Sequential.nested_specs({"list_of_func_kwargs": spec["list_of_func_kwargs"]})

    assert nested == [
        ("memory_op", "list_of_func_kwargs[0]", spec["list_of_func_kwargs"][0]),
        ("memory_op", "list_of_func_kwargs[1]", spec["list_of_func_kwargs"][1]),
    ]
    assert Sequential.nested_specs({}) == []


# PyTorchTNN parity (recordings of the reference's resnet18 config with time-varying batch norm)

RESNET_CASE = "test_resnet18_bn_timevary"


def load_resnet_case(parity_dir: Path) -> tuple[dict, dict]:
    case_dir = parity_dir / RESNET_CASE
    config = json.loads((case_dir / "config.json").read_text())
    reference_keys = json.loads((case_dir / "state_dict_keys.json").read_text())
    return config, {entry["key"]: tuple(entry["shape"]) for entry in reference_keys}


def build_resnet_node_ops(node: dict, input_shape: tuple[int, ...], num_timesteps: int) -> tuple[nn.Module, nn.Module]:
    """Build a node's pre- and post-memory ops as the graph would (IdentityCell in between)."""
    pre = build_component(
        "memory_op",
        node["pre_memory"],
        where=f"nodes[{node['name']}].pre_memory",
        provided={"in_channels": input_shape[0], "input_shape": input_shape, "num_timesteps": num_timesteps},
    )
    pre_out = tuple(pre(torch.zeros(2, *input_shape), curr_timestep=0).shape[1:])
    post = build_component(
        "memory_op",
        node["post_memory"],
        where=f"nodes[{node['name']}].post_memory",
        provided={
            "in_channels": pre_out[0],
            "input_shape": pre_out,
            "num_timesteps": num_timesteps,
            "residual_shape": input_shape,
        },
    )
    return pre, post


def test_resnet18_state_dict_keys_match_reference(parity_dir):
    config, reference = load_resnet_case(parity_dir)
    activations = torch.load(parity_dir / RESNET_CASE / "activations_all.pt", weights_only=True)["bio_activations_all"][0]
    num_timesteps = config["num_timesteps"]

    previous_shape = tuple(config["input_shape"])
    for node in config["nodes"]:
        pre, post = build_resnet_node_ops(node, previous_shape, num_timesteps)
        ours = {f"{node['name']}._pre_memory.{k}": tuple(v.shape) for k, v in pre.state_dict().items()}
        ours.update({f"{node['name']}._post_memory.{k}": tuple(v.shape) for k, v in post.state_dict().items()})
        expected = {k: v for k, v in reference.items() if k.startswith(f"{node['name']}.")}

        assert ours == expected, node["name"]
        previous_shape = tuple(activations[node["name"]].shape[1:])


def test_resnet18_node_outputs_match_reference(parity_dir):
    config, _ = load_resnet_case(parity_dir)
    case = torch.load(parity_dir / RESNET_CASE / "case.pt", weights_only=True)
    recorded = torch.load(parity_dir / RESNET_CASE / "activations_all.pt", weights_only=True)["bio_activations_all"]
    state_dict = {k: v.float() if v.is_floating_point() else v for k, v in case["state_dict"].items()}
    stimulus = case["input5d"].float()
    num_timesteps = config["num_timesteps"]
    assert case["mode"] == "eval"

    previous_name = None
    previous_shape = tuple(config["input_shape"])
    for node in config["nodes"]:
        name = node["name"]
        pre, post = build_resnet_node_ops(node, previous_shape, num_timesteps)
        pre.load_state_dict({k[len(f"{name}._pre_memory."):]: v for k, v in state_dict.items() if k.startswith(f"{name}._pre_memory.")})
        post.load_state_dict({k[len(f"{name}._post_memory."):]: v for k, v in state_dict.items() if k.startswith(f"{name}._post_memory.")})
        pre.eval()
        post.eval()

        # Biological unroll: a node reads its predecessor's output of the previous step (the stimulus node reads
        # the stimulus of the current step), so each step can be checked from the recorded inputs.
        for step in range(1, case["n_times"]):
            harbor_output = stimulus[:, step] if previous_name is None else recorded[step - 1][previous_name]
            with torch.no_grad():
                cell_output = pre(harbor_output, curr_timestep=step)
                if node.get("residual"):
                    output = post(cell_output, residual=harbor_output, curr_timestep=step)
                else:
                    output = post(cell_output, curr_timestep=step)
            reference = recorded[step][name]

            torch.testing.assert_close(output, reference, **parity_tolerance(reference), msg=f"{name} at step {step}")

        previous_name = name
        previous_shape = tuple(recorded[0][name].shape[1:])


def test_sequential_passes_residual_to_residual_add():
    """PyTorchTNN's intermediate configs put ResidualAdd inside Sequential on a residual node."""
    from tnn_core import TemporalGraph

    config = {
        "input_shape": [2, 8, 8],
        "input_nodes": ["a"],
        "output_node": "b",
        "nodes": [
            {"name": "a", "pre_memory": {"name": "Conv2dCell", "out_channels": 3, "ksize": 3, "padding": 1}, "out_channels": 3},
            {
                "name": "b",
                "shape_from": "a",
                "residual": True,
                "pre_memory": {"name": "Conv2dCell", "out_channels": 4, "ksize": 3, "padding": "same"},
                "post_memory": {
                    "name": "Sequential",
                    "list_of_func_kwargs": [
                        {
                            "name": "ResidualAdd",
                            "feedforward_func_kwargs": {"name": "Conv2dCell", "out_channels": 4, "ksize": 3, "padding": "same"},
                            "residual_func_kwargs": {"name": "Conv2dCell", "in_channels": 3, "out_channels": 4, "ksize": 1},
                            "activation": "ELU",
                        },
                        {"name": "MaxPool", "ksize": 2, "stride": 2, "ceil_mode": True},
                    ],
                },
                "out_channels": 4,
            },
        ],
        "edges": [{"from": "a", "to": "b"}],
    }
    graph = TemporalGraph(config).eval()
    x = torch.randn(2, 2, 8, 8)
    with torch.no_grad():
        _, activations = graph(x, n_times=2, return_activations=True)
        node = graph.nodes["b"]
        harbor = activations[0]["a"]
        residual_add = node.post_memory.sequential_mem[0]
        expected = torch.nn.functional.max_pool2d(
            torch.nn.functional.elu(residual_add.feedforward(node.pre_memory(harbor)) + residual_add.residual(harbor)),
            2, 2, ceil_mode=True,
        )

    assert tuple(activations[1]["b"].shape) == (2, 4, 4, 4)
    torch.testing.assert_close(activations[1]["b"], expected)
