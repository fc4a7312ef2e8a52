"""Unit tests of the built-in recurrent cells: shapes, state handling, gradients,
argument checks, and hand-written steps for the cells without PyTorchTNN recordings.
"""

from __future__ import annotations

import copy
import inspect
import typing
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tnn_cells.cells._common import ChannelLayerNorm
from tnn_cells.cells.convrnn_basic import ConvRNNBasicCell
from tnn_cells.cells.gru import GRUCell
from tnn_cells.cells.identity import IdentityCell
from tnn_cells.cells.intersection import IntersectionRNNCell
from tnn_cells.cells.lstm import LSTMCell
from tnn_cells.cells.time_decay import TimeDecayRecurrentCell
from tnn_cells.cells.ugrnn import UGRNNCell
from tnn_cells.cells.vanilla import VanillaRNNCell
from tnn_core.building import check_component_spec

CHANNELS = 3
BATCH = 2
SPATIAL = (5, 6)

ALL_CLASSES = [
    IdentityCell,
    TimeDecayRecurrentCell,
    ConvRNNBasicCell,
    VanillaRNNCell,
    GRUCell,
    LSTMCell,
    UGRNNCell,
    IntersectionRNNCell,
]

# Cells whose state has the input's shape, so they need input_in_channels == out_channels.
SAME_CHANNEL_CLASSES = [VanillaRNNCell, GRUCell, LSTMCell, UGRNNCell, IntersectionRNNCell]

# Cells whose constructor takes activation and activation_func_kwargs.
ACTIVATION_CLASSES = [ConvRNNBasicCell, VanillaRNNCell, GRUCell, LSTMCell]


def _conv_kwargs(**extra: object) -> dict[str, object]:
    return {"input_in_channels": CHANNELS, "out_channels": CHANNELS, "ksize": 3, **extra}


# (id, factory, output channels, state channels)
CELL_CASES: list[tuple[str, Callable[[], nn.Module], int, int]] = [
    ("time_decay", lambda: TimeDecayRecurrentCell(input_in_channels=CHANNELS, tau=0.5), CHANNELS, CHANNELS),
    (
        "time_decay_frozen",
        lambda: TimeDecayRecurrentCell(input_in_channels=CHANNELS, tau=0.5, trainable=False),
        CHANNELS,
        CHANNELS,
    ),
    (
        "convrnn_basic_in3_out5",
        lambda: ConvRNNBasicCell(input_in_channels=CHANNELS, out_channels=5, ksize=3, padding=1, activation="Tanh"),
        5,
        5,
    ),
    ("vanilla", lambda: VanillaRNNCell(**_conv_kwargs()), CHANNELS, CHANNELS),
    ("vanilla_no_layernorm", lambda: VanillaRNNCell(**_conv_kwargs(layernorm=False)), CHANNELS, CHANNELS),
    ("gru", lambda: GRUCell(**_conv_kwargs()), CHANNELS, CHANNELS),
    ("gru_layernorm", lambda: GRUCell(**_conv_kwargs(layernorm=True)), CHANNELS, CHANNELS),
    ("lstm", lambda: LSTMCell(**_conv_kwargs()), CHANNELS, 2 * CHANNELS),
    ("lstm_layernorm", lambda: LSTMCell(**_conv_kwargs(layernorm=True)), CHANNELS, 2 * CHANNELS),
    ("ugrnn", lambda: UGRNNCell(**_conv_kwargs()), CHANNELS, CHANNELS),
    ("ugrnn_layernorm", lambda: UGRNNCell(**_conv_kwargs(layernorm=True)), CHANNELS, CHANNELS),
    ("intersection", lambda: IntersectionRNNCell(**_conv_kwargs()), CHANNELS, CHANNELS),
    ("intersection_layernorm", lambda: IntersectionRNNCell(**_conv_kwargs(layernorm=True)), CHANNELS, CHANNELS),
]

CASE_PARAMS = [pytest.param(factory, out_ch, state_ch, id=case_id) for case_id, factory, out_ch, state_ch in CELL_CASES]

# The frozen time-decay cell has no trainable parameter, so test_frozen_tau_gets_no_gradient covers it.
TRAINABLE_CASE_PARAMS = [param for param in CASE_PARAMS if param.id != "time_decay_frozen"]


def _randomize_norms(cell: nn.Module) -> None:
    """Give every layer norm non-trivial affine parameters, so a test can see whether they are used."""
    with torch.no_grad():
        for module in cell.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.uniform_(0.6, 1.4)
                module.bias.uniform_(-0.2, 0.2)


def _inputs(batch: int = BATCH, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(batch, CHANNELS, *SPATIAL, dtype=dtype)


def _unroll(cell: nn.Module, inputs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    outputs, states = [], []
    state = None
    for step_input in inputs:
        output, state = cell(step_input, state)
        outputs.append(output)
        states.append(state)
    return outputs, states


# --- Shapes, state threading, gradients, batches, dtypes ---------------------


@pytest.mark.parametrize(("factory", "out_channels", "state_channels"), CASE_PARAMS)
def test_output_and_state_shapes(factory, out_channels, state_channels) -> None:
    torch.manual_seed(0)
    cell = factory()

    outputs, states = _unroll(cell, [_inputs() for _ in range(3)])

    for output, state in zip(outputs, states):
        assert output.shape == (BATCH, out_channels, *SPATIAL)
        assert state.shape == (BATCH, state_channels, *SPATIAL)


@pytest.mark.parametrize(("factory", "out_channels", "state_channels"), CASE_PARAMS)
def test_state_changes_output(factory, out_channels, state_channels) -> None:
    torch.manual_seed(0)
    cell = factory()
    x = _inputs()

    first_output, state = cell(x, None)
    second_output, _ = cell(x, state)

    assert not torch.allclose(first_output, second_output)


@pytest.mark.parametrize(("factory", "out_channels", "state_channels"), CASE_PARAMS)
def test_none_state_equals_zero_state(factory, out_channels, state_channels) -> None:
    torch.manual_seed(0)
    cell = factory()
    x = _inputs()

    from_none, state = cell(x, None)
    from_zeros, _ = cell(x, torch.zeros_like(state))

    torch.testing.assert_close(from_none, from_zeros, rtol=0, atol=0)


@pytest.mark.parametrize(("factory", "out_channels", "state_channels"), TRAINABLE_CASE_PARAMS)
def test_gradients_reach_trainable_parameters(factory, out_channels, state_channels) -> None:
    torch.manual_seed(0)
    cell = factory()
    _randomize_norms(cell)
    trainable = {name: p for name, p in cell.named_parameters() if p.requires_grad}
    assert trainable, "the cell has no trainable parameters"

    outputs, _ = _unroll(cell, [_inputs() for _ in range(3)])
    loss = sum(output.square().sum() for output in outputs)
    loss.backward()

    for name, parameter in trainable.items():
        assert parameter.grad is not None, f"{name} got no gradient"
        assert parameter.grad.abs().sum() > 0, f"{name} got an all-zero gradient"


@pytest.mark.parametrize(("factory", "out_channels", "state_channels"), CASE_PARAMS)
def test_batch_elements_independent(factory, out_channels, state_channels) -> None:
    torch.manual_seed(0)
    cell = factory().double()
    _randomize_norms(cell)
    inputs = [_inputs(batch=3, dtype=torch.float64) for _ in range(3)]

    batched_outputs, batched_states = _unroll(cell, inputs)

    for index in range(3):
        single_outputs, single_states = _unroll(cell, [x[index : index + 1] for x in inputs])
        for step in range(3):
            torch.testing.assert_close(batched_outputs[step][index : index + 1], single_outputs[step])
            torch.testing.assert_close(batched_states[step][index : index + 1], single_states[step])


@pytest.mark.parametrize(("factory", "out_channels", "state_channels"), CASE_PARAMS)
def test_float64_outputs_and_states(factory, out_channels, state_channels) -> None:
    torch.manual_seed(0)
    cell = factory().double()

    outputs, states = _unroll(cell, [_inputs(dtype=torch.float64) for _ in range(2)])

    for output, state in zip(outputs, states):
        assert output.dtype == torch.float64
        assert state.dtype == torch.float64


def test_frozen_tau_gets_no_gradient() -> None:
    cell = TimeDecayRecurrentCell(input_in_channels=CHANNELS, tau=0.5, trainable=False)

    outputs, _ = _unroll(cell, [_inputs().requires_grad_() for _ in range(3)])
    sum(output.sum() for output in outputs).backward()

    assert cell.tau.requires_grad is False
    assert cell.tau.grad is None
    assert "tau" in cell.state_dict()


# --- Cells with special behaviour -------------------------------------------


def test_identity_passes_input_and_state() -> None:
    cell = IdentityCell(input_in_channels=CHANNELS)
    x = _inputs()
    state = torch.randn(BATCH, CHANNELS, *SPATIAL)

    output, new_state = cell(x, None)
    assert output is x
    assert new_state is None

    output, new_state = cell(x, state)
    assert output is x
    assert new_state is state
    assert list(cell.parameters()) == []


def test_time_decay_leaky_integration() -> None:
    cell = TimeDecayRecurrentCell(input_in_channels=CHANNELS, tau=0.5)
    x0, x1 = _inputs(), _inputs()

    y0, state = cell(x0, None)
    y1, _ = cell(x1, state)

    torch.testing.assert_close(y0, x0)
    torch.testing.assert_close(y1, x1 + 0.5 * x0)


def test_time_decay_accepts_vectors() -> None:
    cell = TimeDecayRecurrentCell(input_in_channels=10, tau=0.25)
    x = torch.randn(BATCH, 10)

    output, state = cell(x, None)
    output, state = cell(x, state)

    assert output.shape == (BATCH, 10)
    torch.testing.assert_close(output, 1.25 * x)


def test_convrnn_basic_zero_state_from_conv_output() -> None:
    cell = ConvRNNBasicCell(input_in_channels=CHANNELS, out_channels=4, ksize=3, stride=2, padding=1)
    cell.conv_state = nn.Conv2d(4, 4, kernel_size=1)  # keeps the state's size despite stride 2

    output, state = cell(torch.randn(BATCH, CHANNELS, 8, 8), None)

    assert output.shape == (BATCH, 4, 4, 4)
    assert state is output


def test_convrnn_basic_zero_state_dtype() -> None:
    cell = ConvRNNBasicCell(input_in_channels=CHANNELS, out_channels=4, state_shape=list(SPATIAL), padding=1).double()

    output, state = cell(_inputs(dtype=torch.float64), None)

    assert output.dtype == torch.float64
    assert state.shape == (BATCH, 4, *SPATIAL)


def test_convrnn_basic_default_padding_rejected() -> None:
    cell = ConvRNNBasicCell(input_in_channels=CHANNELS, out_channels=4)

    with pytest.raises(ValueError, match=r"conv_state outputs spatial size \(1, 2\) but the state has \(3, 4\)"):
        cell(_inputs(), None)


def test_convrnn_basic_state_shape_mismatch() -> None:
    cell = ConvRNNBasicCell(input_in_channels=CHANNELS, out_channels=4, state_shape=[4, 4], padding=1)

    with pytest.raises(ValueError, match=r"set state_shape to \[5, 6\]"):
        cell(_inputs(), None)


@pytest.mark.parametrize("cell_class", SAME_CHANNEL_CLASSES)
def test_size_changing_padding_rejected(cell_class) -> None:
    cell = cell_class(**_conv_kwargs(padding=0))

    with pytest.raises(ValueError, match=r"outputs spatial size \(3, 4\) but the state has \(5, 6\)"):
        cell(_inputs(), None)


def test_intersection_output_differs_from_state() -> None:
    torch.manual_seed(0)
    cell = IntersectionRNNCell(**_conv_kwargs())

    output, state = cell(_inputs(), None)

    assert not torch.allclose(output, state)


def test_channel_layer_norm_normalizes_each_pixel() -> None:
    torch.manual_seed(0)
    norm = ChannelLayerNorm(4)
    x = 3.0 * torch.randn(2, 4, 5, 6) + 1.0

    y = norm(x)

    torch.testing.assert_close(y.mean(dim=1), torch.zeros(2, 5, 6), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(dim=1, unbiased=False), torch.ones(2, 5, 6), atol=1e-3, rtol=0)
    assert [name for name, _ in norm.named_parameters()] == ["weight", "bias"]


# --- Hand-written reference steps -------------------------------------------


def _pixel_layer_norm(x: torch.Tensor, norm: nn.LayerNorm | None) -> torch.Tensor:
    """Normalize over channels at each pixel with ``norm``'s affine parameters, or return ``x`` for ``None``."""
    if norm is None:
        return x
    mean = x.mean(dim=1, keepdim=True)
    variance = ((x - mean) ** 2).mean(dim=1, keepdim=True)
    normalized = (x - mean) / torch.sqrt(variance + norm.eps)
    return normalized * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)


def _same_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """Apply ``conv``'s weights with explicit 'same' padding for an odd, square kernel."""
    return F.conv2d(x, conv.weight, conv.bias, padding=conv.weight.shape[-1] // 2)


@pytest.mark.parametrize("layernorm", [False, True], ids=["plain", "layernorm"])
def test_lstm_matches_handwritten_step(layernorm: bool) -> None:
    torch.manual_seed(0)
    cell = LSTMCell(input_in_channels=2, out_channels=2, ksize=3, layernorm=layernorm, forget_bias=0.7).double()
    _randomize_norms(cell)
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64)
    c_prev = torch.randn(1, 2, 3, 4, dtype=torch.float64)
    h_prev = torch.randn(1, 2, 3, 4, dtype=torch.float64)

    def norm(name: str) -> nn.LayerNorm | None:
        return getattr(cell, name) if layernorm else None

    gates = _same_conv(cell.conv, torch.cat([x, h_prev], dim=1))
    i, j, f, o = gates[:, 0:2], gates[:, 2:4], gates[:, 4:6], gates[:, 6:8]
    i = _pixel_layer_norm(i, norm("ln_input"))
    j = _pixel_layer_norm(j, norm("ln_transform"))
    f = _pixel_layer_norm(f, norm("ln_forget"))
    o = _pixel_layer_norm(o, norm("ln_output"))
    c_new = c_prev * torch.sigmoid(f + 0.7) + torch.sigmoid(i) * torch.tanh(j)
    c_new = _pixel_layer_norm(c_new, norm("ln_state"))
    h_new = torch.tanh(c_new) * torch.sigmoid(o)

    with torch.no_grad():
        output, state = cell(x, torch.cat([c_prev, h_prev], dim=1))

    torch.testing.assert_close(output, h_new)
    torch.testing.assert_close(state[:, :2], c_new)
    torch.testing.assert_close(state[:, 2:], h_new)


def test_lstm_zero_state_layout() -> None:
    cell = LSTMCell(input_in_channels=2, out_channels=2, ksize=1)
    x = torch.randn(1, 2, 3, 4)

    from_none, state = cell(x, None)
    from_zeros, _ = cell(x, torch.zeros(1, 4, 3, 4))

    torch.testing.assert_close(from_none, from_zeros, rtol=0, atol=0)
    torch.testing.assert_close(state[:, 2:], from_none, rtol=0, atol=0)


@pytest.mark.parametrize("layernorm", [False, True], ids=["plain", "layernorm"])
def test_intersection_matches_handwritten_step(layernorm: bool) -> None:
    torch.manual_seed(0)
    cell = IntersectionRNNCell(input_in_channels=2, out_channels=2, ksize=3, layernorm=layernorm, forget_bias=0.3)
    cell = cell.double()
    _randomize_norms(cell)
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64)
    h_prev = torch.randn(1, 2, 3, 4, dtype=torch.float64)

    def norm(name: str) -> nn.LayerNorm | None:
        return getattr(cell, name) if layernorm else None

    pre = _same_conv(cell.conv, torch.cat([x, h_prev], dim=1))
    gh = torch.sigmoid(_pixel_layer_norm(pre[:, 0:2], norm("ln_gh_act")) + 0.3)
    h_candidate = torch.tanh(_pixel_layer_norm(pre[:, 2:4], norm("ln_h_act")))
    gy = torch.sigmoid(_pixel_layer_norm(pre[:, 4:6], norm("ln_gy_act")) + 0.3)
    y_candidate = torch.relu(_pixel_layer_norm(pre[:, 6:8], norm("ln_y_act")))
    expected_output = gy * x + (1 - gy) * y_candidate
    expected_state = gh * h_prev + (1 - gh) * h_candidate

    with torch.no_grad():
        output, state = cell(x, h_prev)

    torch.testing.assert_close(output, expected_output)
    torch.testing.assert_close(state, expected_state)


# --- Constructor contract and argument checks -------------------------------


@pytest.mark.parametrize("cell_class", ALL_CLASSES)
def test_constructor_signature_contract(cell_class) -> None:
    parameters = list(inspect.signature(cell_class.__init__).parameters.values())[1:]
    hints = typing.get_type_hints(cell_class.__init__)

    for parameter in parameters:
        assert parameter.kind is not inspect.Parameter.VAR_KEYWORD, f"{parameter.name}: **kwargs is not allowed"
        assert parameter.name in hints, f"{parameter.name} has no type hint"
        assert not isinstance(parameter.default, (list, dict, set)), f"{parameter.name} has a mutable default"


@pytest.mark.parametrize("cell_class", SAME_CHANNEL_CLASSES)
def test_channel_mismatch_names_both_numbers(cell_class) -> None:
    with pytest.raises(ValueError) as error:
        cell_class(input_in_channels=4, out_channels=6, ksize=3)

    message = str(error.value)
    assert "input_in_channels (4)" in message
    assert "out_channels (6)" in message
    assert "set out_channels to 4" in message


@pytest.mark.parametrize("cell_class", SAME_CHANNEL_CLASSES)
def test_init_dict_not_mutated(cell_class) -> None:
    init_dict = {"method": "constant_", "val": 0.125}
    original = copy.deepcopy(init_dict)

    cell = cell_class(**_conv_kwargs(init_dict=init_dict, bias=-0.5))

    assert init_dict == original
    convs = [module for module in cell.modules() if isinstance(module, nn.Conv2d)]
    for conv in convs:
        assert torch.all(conv.weight == 0.125)
        assert torch.all(conv.bias == -0.5)


def test_init_dict_shared_between_cells() -> None:
    init_dict = {"method": "normal_", "mean": 0.0, "std": 0.01}
    original = copy.deepcopy(init_dict)

    gru = GRUCell(**_conv_kwargs(init_dict=init_dict))
    vanilla = VanillaRNNCell(**_conv_kwargs(init_dict=init_dict))

    assert init_dict == original
    for conv in (gru.conv_ru, gru.conv_c, vanilla.conv_input, vanilla.conv_state):
        assert conv.weight.abs().max() < 0.1


def test_init_dict_sets_tau() -> None:
    init_dict = {"method": "constant_", "val": 0.25}

    cell = TimeDecayRecurrentCell(input_in_channels=CHANNELS, init_dict=init_dict)

    assert init_dict == {"method": "constant_", "val": 0.25}
    assert cell.tau.item() == 0.25
    assert cell.tau.shape == ()


def test_init_dict_rejected_for_scalar_tau() -> None:
    with pytest.raises(ValueError, match="cannot initialise the scalar tau"):
        TimeDecayRecurrentCell(input_in_channels=CHANNELS, init_dict={"method": "xavier_uniform_"})


@pytest.mark.parametrize("cell_class", ACTIVATION_CLASSES)
def test_unknown_activation_lists_choices(cell_class) -> None:
    with pytest.raises(ValueError) as error:
        cell_class(**_conv_kwargs(activation="Relu"))

    message = str(error.value)
    assert "'Relu'" in message
    assert "ReLU" in message
    assert "Tanh" in message


def test_activation_kwargs_not_mutated() -> None:
    activation_kwargs = {"negative_slope": 0.2}

    cell = GRUCell(**_conv_kwargs(activation="LeakyReLU", activation_func_kwargs=activation_kwargs))

    assert activation_kwargs == {"negative_slope": 0.2}
    assert cell.activation.negative_slope == 0.2


def test_activation_none_is_identity() -> None:
    cell = VanillaRNNCell(**_conv_kwargs(activation=None, layernorm=False))

    assert isinstance(cell.activation, nn.Identity)


INVALID_ARGUMENTS = [
    ("ksize", 0, "ksize must be a positive integer"),
    ("ksize", [3], "ksize must be a positive integer"),
    ("ksize", "3", "ksize must be a positive integer"),
    ("ksize", True, "ksize must be a positive integer"),
    ("stride", 0, "stride must be a positive integer"),
    ("dilation", [1, 0], "dilation must be a positive integer"),
    ("padding", "full", "padding must be 'same', 'valid'"),
    ("padding", -1, "padding must be a non-negative integer"),
    ("padding_mode", "mirror", "padding_mode must be one of zeros, reflect, replicate, circular"),
    ("groups", 4, r"groups \(4\) must divide"),
    ("groups", 0, "groups must be a positive integer"),
    ("use_bias", 1, "use_bias must be true or false"),
    ("layernorm", "yes", "layernorm must be true or false"),
    ("forget_bias", "1", "forget_bias must be a number"),
    ("state_shape", [8], r"state_shape must be \(height, width\)"),
]


@pytest.mark.parametrize("cell_class", [GRUCell, LSTMCell, UGRNNCell, IntersectionRNNCell])
@pytest.mark.parametrize(("name", "value", "message"), INVALID_ARGUMENTS, ids=lambda v: repr(v))
def test_invalid_argument_rejected(cell_class, name, value, message) -> None:
    with pytest.raises(ValueError, match=message) as error:
        cell_class(**_conv_kwargs(**{name: value}))

    assert repr(value) in str(error.value) or str(value) in str(error.value)


def test_same_padding_with_stride_rejected() -> None:
    with pytest.raises(ValueError, match="padding 'same' needs stride 1"):
        GRUCell(**_conv_kwargs(stride=2))


@pytest.mark.parametrize(
    ("cell_class", "kwargs"),
    [
        (ConvRNNBasicCell, {"out_channels": 4}),
        (ConvRNNBasicCell, {"input_in_channels": 0, "out_channels": 4}),
        (TimeDecayRecurrentCell, {"tau": "0.5"}),
        (TimeDecayRecurrentCell, {"trainable": "no"}),
        (IdentityCell, {"input_in_channels": -1}),
    ],
)
def test_other_invalid_arguments_rejected(cell_class, kwargs) -> None:
    with pytest.raises(ValueError):
        cell_class(**kwargs)


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "GRUCell", "out_channels": 6, "ksize": [3, 3], "layernorm": True, "forget_bias": 0.5},
        {"name": "LSTMCell", "out_channels": 6, "ksize": 1, "init_dict": {"method": "xavier_uniform_"}},
        {"name": "ConvRNNBasicCell", "out_channels": 8, "state_shape": [8, 8], "padding": 1,
         "activation": "LeakyReLU", "activation_func_kwargs": {"negative_slope": 0.2}},
        {"name": "TimeDecayRecurrentCell", "tau": 0, "trainable": False},
        {"name": "IdentityCell"},
    ],
    ids=lambda spec: spec["name"],
)
def test_config_values_pass_type_hints(spec) -> None:
    problems = check_component_spec("cell", spec, "nodes[n].recurrent_cell", provided={"input_in_channels": 6})

    assert problems == []
