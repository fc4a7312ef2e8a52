"""Unit tests of ReciprocalGatedCell beyond the reference's recorded runs."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from tnn_cells_rgc import ReciprocalGatedCell
from tnn_core.layers import max_timesteps_of

BATCH, HEIGHT, WIDTH = 2, 6, 6
IN_CHANNELS, RES_CHANNELS, FB_CHANNELS = 6, 5, 4


def make_cell(**overrides: Any) -> ReciprocalGatedCell:
    kwargs: dict[str, Any] = dict(
        input_in_channels=IN_CHANNELS, out_channels=IN_CHANNELS, cell_depth=4, res_channels=RES_CHANNELS
    )
    kwargs.update(overrides)
    return ReciprocalGatedCell(**kwargs)


def make_inputs(steps: int, fb: bool = False, seed: int = 0, dtype: torch.dtype = torch.float32) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    steps_inputs = []
    for _ in range(steps):
        step = {
            "inputs": torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH, generator=generator, dtype=dtype),
            "res_input": torch.randn(BATCH, RES_CHANNELS, HEIGHT, WIDTH, generator=generator, dtype=dtype),
            "fb_input": torch.randn(BATCH, FB_CHANNELS, HEIGHT, WIDTH, generator=generator, dtype=dtype) if fb else None,
        }
        steps_inputs.append(step)
    return steps_inputs


def run(cell: ReciprocalGatedCell, steps: list[dict]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    outputs, states = [], []
    state = None
    for t, step in enumerate(steps):
        output, state = cell(step["inputs"], state, fb_input=step["fb_input"], res_input=step["res_input"], curr_timestep=t)
        outputs.append(output)
        states.append(state)
    return outputs, states


def conv_weights(cell: nn.Module) -> dict[str, torch.Tensor]:
    return {name: module.weight for name, module in cell.named_modules() if isinstance(module, nn.Conv2d)}


# --- CReLU ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("layernorm", [False, True])
@pytest.mark.parametrize("tau_depth_separable", [False, True])
def test_crelu_cell_runs_several_steps(layernorm: bool, tau_depth_separable: bool) -> None:
    cell = make_cell(
        cell_activation="CReLU", layernorm=layernorm, tau_depth_separable=tau_depth_separable, gate_depth_separable=True
    )
    outputs, states = run(cell, make_inputs(4))

    assert cell.cell_depth_out == 8
    for output, state in zip(outputs, states):
        assert output.shape == (BATCH, IN_CHANNELS, HEIGHT, WIDTH)
        assert state.shape == (BATCH, 8 + IN_CHANNELS, HEIGHT, WIDTH)
        assert torch.isfinite(state).all()
        # The cell part is a CReLU output: non-negative, and each channel pair has one zero.
        cell_part = state[:, :8]
        assert (cell_part >= 0).all()
        assert (cell_part[:, :4] * cell_part[:, 4:] == 0).all()


def test_crelu_convs_read_doubled_cell() -> None:
    cell = make_cell(cell_activation="CReLU")
    assert cell.cell_tau_conv.conv.in_channels == 8
    assert cell.cell_tau_conv.conv.out_channels == 4
    assert cell.cell2out_conv.conv.in_channels == 8


def test_crelu_on_output_rejected() -> None:
    with pytest.raises(ValueError, match="CReLU"):
        make_cell(out_activation="CReLU")


# --- init_dict -----------------------------------------------------------------------------------


def test_init_dict_reaches_every_conv() -> None:
    init_dict = {"method": "constant_", "val": 0.125}
    original = copy.deepcopy(init_dict)
    options = dict(
        fb_channels=FB_CHANNELS,
        feedback_depth_separable=True,
        ff_depth_separable=True,
        tau_depth_separable=True,
        ds_repeat=True,
        input_to_out=True,
        cell_residual=True,
        out_residual=True,
        input_to_tau=True,
        input_to_gate=True,
        residual_to_cell_tau=True,
        residual_to_cell_gate=True,
        residual_to_out_tau=True,
    )
    cells = [make_cell(init_dict=init_dict, **options), make_cell(init_dict=init_dict, **options)]

    assert init_dict == original
    for cell in cells:
        weights = conv_weights(cell)
        assert len(weights) > 20
        for name, weight in weights.items():
            assert torch.all(weight == 0.125), name


def test_init_dict_unknown_method_rejected() -> None:
    with pytest.raises(ValueError, match="no_such_init"):
        make_cell(init_dict={"method": "no_such_init"})


# --- The options PyTorchTNN ignores ---------------------------------------------------------------

MEDIAN_SWITCHES = ["input_to_tau", "input_to_gate", "residual_to_cell_tau", "residual_to_cell_gate", "residual_to_out_tau"]


def _randomize(cell: nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in cell.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)


@pytest.mark.parametrize("switch", MEDIAN_SWITCHES)
def test_median_switch_changes_output(switch: str) -> None:
    steps = make_inputs(3)
    base = make_cell()
    _randomize(base, seed=1)
    variant = make_cell(**{switch: True})
    missing, unexpected = variant.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected
    assert missing, f"{switch} adds no convolution"

    with torch.no_grad():
        base_out, _ = run(base, steps)
        variant_out, _ = run(variant, steps)
        assert not torch.allclose(base_out[-1], variant_out[-1])

        # The added convs are additive pre-activation terms: zero weights give the base cell back.
        for key in missing:
            variant.get_parameter(key).zero_()
        zeroed_out, _ = run(variant, steps)
    torch.testing.assert_close(zeroed_out[-1], base_out[-1], rtol=0, atol=0)


@pytest.mark.parametrize("name", ["tau_bias", "gate_bias"])
@pytest.mark.parametrize("depth_separable", [False, True])
def test_constant_bias_changes_output(name: str, depth_separable: bool) -> None:
    steps = make_inputs(3)
    ds = dict(tau_depth_separable=depth_separable, gate_depth_separable=depth_separable)
    base = make_cell(**ds)
    _randomize(base, seed=2)
    variant = make_cell(**{name: 1.5}, **ds)
    variant.load_state_dict(base.state_dict(), strict=True)

    with torch.no_grad():
        base_out, _ = run(base, steps)
        variant_out, _ = run(variant, steps)
    assert not torch.allclose(base_out[-1], variant_out[-1])


def test_tau_bias_equals_shifted_conv_bias() -> None:
    # tau_bias adds to the tau pre-activations, which is what a larger conv bias does.
    steps = make_inputs(3)
    base = make_cell()
    _randomize(base, seed=3)
    variant = make_cell(tau_bias=0.75)
    variant.load_state_dict(base.state_dict(), strict=True)
    with torch.no_grad():
        base.cell_tau_conv.conv.bias += 0.75
        base.out_tau_conv.conv.bias += 0.75
        base_out, _ = run(base, steps)
        variant_out, _ = run(variant, steps)
    torch.testing.assert_close(variant_out[-1], base_out[-1])


@pytest.mark.parametrize("name", ["residual_to_cell_tau", "residual_to_cell_gate", "gate_bias", "cell_to_out"])
def test_cell_option_without_cell_rejected(name: str) -> None:
    value = 0.5 if name == "gate_bias" else True
    with pytest.raises(ValueError, match=name):
        make_cell(gate_filter_size=0, residual_to_out_gate=False, **{name: value})


# --- Validation ----------------------------------------------------------------------------------


def test_invalid_feedback_entry_lists_choices() -> None:
    with pytest.raises(ValueError) as info:
        make_cell(fb_channels=FB_CHANNELS, feedback_entry="state")
    message = str(info.value)
    assert "'state'" in message
    for choice in ("'input'", "'cell'", "'out'"):
        assert choice in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"out_channels": 8}, "input_to_out"),
        ({"input_to_cell": False}, "cell_residual"),
        ({"stride": 2}, "stride"),
        ({"batchnorm": 5}, "batchnorm"),
        ({"batchnorm_timevary": True}, "batchnorm"),
        ({"dropout": 1.5}, "dropout"),
        ({"gate_filter_size": 0}, "residual_to_out_gate"),
        ({"tau_filter_size": (3, 0)}, "tau_filter_size"),
        ({"cell_depth": 0}, "cell_depth"),
    ],
)
def test_invalid_options_rejected(overrides: dict, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        make_cell(**overrides)


def test_missing_res_input_rejected() -> None:
    cell = make_cell()
    with pytest.raises(ValueError, match="residual_to_out_gate"):
        cell(torch.zeros(BATCH, IN_CHANNELS, HEIGHT, WIDTH))


def test_fb_input_without_fb_channels_rejected() -> None:
    cell = make_cell(residual_to_out_gate=False)
    with pytest.raises(ValueError, match="fb_channels"):
        cell(torch.zeros(BATCH, IN_CHANNELS, HEIGHT, WIDTH), fb_input=torch.zeros(BATCH, FB_CHANNELS, HEIGHT, WIDTH))


# --- Shapes, routing and gradients -------------------------------------------------------------


@pytest.mark.parametrize("entry", ["input", "cell", "out"])
def test_feedback_conv_sized_for_entry(entry: str) -> None:
    cell = make_cell(fb_channels=FB_CHANNELS, feedback_entry=entry, cell_depth=3, out_channels=7, input_to_out=True)
    expected = {"input": IN_CHANNELS, "cell": 3, "out": 7}[entry]
    assert cell.feedback_conv.conv.out_channels == expected

    outputs, states = run(cell, make_inputs(2, fb=True))
    assert outputs[-1].shape == (BATCH, 7, HEIGHT, WIDTH)
    assert states[-1].shape == (BATCH, 3 + 7, HEIGHT, WIDTH)


def test_cell_without_cell_state() -> None:
    cell = make_cell(gate_filter_size=0, residual_to_out_gate=False, out_residual=True)
    outputs, states = run(cell, make_inputs(3))
    assert not hasattr(cell, "cell_tau_conv")
    assert states[-1].shape == (BATCH, IN_CHANNELS, HEIGHT, WIDTH)
    assert torch.equal(outputs[-1], states[-1])


def test_cell_to_out_without_residual_gate_runs() -> None:
    # PyTorchTNN fails here because its output gate is the integer 0.
    cell = make_cell(cell_to_out=True, residual_to_out_gate=False)
    outputs, _ = run(cell, make_inputs(2))
    assert torch.isfinite(outputs[-1]).all()


def test_zero_state_follows_input_dtype() -> None:
    cell = make_cell().to(torch.float64)
    step = make_inputs(1, dtype=torch.float64)[0]
    output, state = cell(step["inputs"], None, res_input=step["res_input"])
    assert output.dtype == torch.float64
    assert state.dtype == torch.float64


@pytest.mark.parametrize("depth_separable", [False, True])
def test_gradients_reach_all_parameters(depth_separable: bool) -> None:
    torch.manual_seed(0)
    ds = {
        name: depth_separable
        for name in ("feedback_depth_separable", "ff_depth_separable", "in_out_depth_separable",
                     "gate_depth_separable", "tau_depth_separable", "ds_repeat")
    }
    cell = make_cell(
        fb_channels=FB_CHANNELS,
        feedback_entry="cell",
        cell_residual=True,
        out_residual=True,
        input_to_out=True,
        layernorm=True,
        batchnorm=True,
        input_to_tau=True,
        input_to_gate=True,
        residual_to_cell_tau=True,
        residual_to_cell_gate=True,
        residual_to_out_tau=True,
        tau_bias=0.5,
        gate_bias=-0.5,
        **ds,
    )
    cell.train()
    outputs, _ = run(cell, make_inputs(3, fb=True))
    outputs[-1].square().sum().backward()

    for name, parameter in cell.named_parameters():
        assert parameter.grad is not None, f"{name} got no gradient"
        assert parameter.grad.abs().sum() > 0, f"{name} got a zero gradient"


# --- Time-varying batch norm ---------------------------------------------------------------------


def test_timevary_batchnorm_past_num_timesteps_raises() -> None:
    cell = make_cell(batchnorm=True, batchnorm_timevary=True, num_timesteps=2)
    assert max_timesteps_of(cell) == 2
    assert "out_tau_conv.bns.1.weight" in cell.state_dict()

    steps = make_inputs(3)
    run(cell, steps[:2])
    with pytest.raises(IndexError, match="2 time steps"):
        run(cell, steps)


def test_timevary_batchnorm_needs_num_timesteps() -> None:
    with pytest.raises(ValueError, match="num_timesteps"):
        make_cell(batchnorm=True, batchnorm_timevary=True)


# --- Through the framework ----------------------------------------------------------------------


def test_built_from_config_spec() -> None:
    from tnn_core.building import build_component

    spec = {"name": "ReciprocalGatedCell", "out_channels": IN_CHANNELS, "cell_depth": 4, "tau_filter_size": [1, 1],
            "feedback_entry": "input", "tau_bias": 1.0}
    provided = {"input_in_channels": IN_CHANNELS, "res_channels": RES_CHANNELS, "fb_channels": FB_CHANNELS,
                "num_timesteps": 4, "input_shape": (IN_CHANNELS, HEIGHT, WIDTH)}
    cell = build_component("cell", spec, "nodes.V1.cell", provided)

    assert isinstance(cell, ReciprocalGatedCell)
    assert cell.tau_filter_size == (1, 1)
    outputs, _ = run(cell, make_inputs(2, fb=True))
    assert outputs[-1].shape == (BATCH, IN_CHANNELS, HEIGHT, WIDTH)


def test_config_type_error_reported() -> None:
    from tnn_core.building import build_component
    from tnn_core.errors import ConfigError

    spec = {"name": "ReciprocalGatedCell", "out_channels": IN_CHANNELS, "cell_depth": 4, "tau_bias": "high"}
    provided = {"input_in_channels": IN_CHANNELS, "res_channels": RES_CHANNELS}
    with pytest.raises(ConfigError, match="tau_bias"):
        build_component("cell", spec, "nodes.V1.cell", provided)
