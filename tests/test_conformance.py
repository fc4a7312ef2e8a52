"""The conformance kit: every installed component passes it, and broken components are caught."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from tnn_cells.cells.gru import GRUCell
from tnn_cells.cells.identity import IdentityCell
from tnn_cells.cells.time_decay import TimeDecayRecurrentCell
from tnn_cells.memory_ops.convolution import Conv2dCell
from tnn_cells.memory_ops.identity import Identity
from tnn_cells.memory_ops.residual_add import ResidualAdd
from tnn_core import register, unregister
from tnn_core.building import accepted_arguments
from tnn_core.protocols import PROVIDED_ARGUMENTS
from tnn_core.registry import ComponentEntry, list_components
from tnn_core.testing import (
    CELL_PROPERTIES,
    ConformanceError,
    check_cell,
    check_harbor,
    check_memory_op,
)
from tnn_harbors.identity import IdentityHarbor
from tnn_harbors.resize_concat import ResizeConcat

CHECKS = {"cell": check_cell, "memory_op": check_memory_op, "harbor": check_harbor}

# Minimal constructor arguments per registered name, for components whose
# constructor has required arguments (or whose defaults make the kit fail for
# a known reason) and that do not define a ``conformance_kwargs`` class
# attribute. A component not listed here is checked with ``conformance_kwargs``
# or, when its constructor needs no arguments beyond the provided ones, with
# none. A component that has required arguments and neither fails with a
# message that says what to add.
CONFORMANCE_KWARGS: dict[str, dict[str, dict[str, Any]]] = {
    "cell": {
        # tau defaults to 0, which makes the state invisible in the output.
        "TimeDecayRecurrentCell": {"tau": 0.5},
        "ConvRNNBasicCell": {"out_channels": 4, "padding": 1},
        "VanillaRNNCell": {"out_channels": 4, "ksize": 3},
        "GRUCell": {"out_channels": 4, "ksize": 3},
        "LSTMCell": {"out_channels": 4, "ksize": 3},
        "UGRNNCell": {"out_channels": 4, "ksize": 3},
        "IntersectionRNNCell": {"out_channels": 4, "ksize": 3},
        "ReciprocalGatedCell": {"out_channels": 4, "cell_depth": 3},
    },
    "memory_op": {
        "Conv2dCell": {"out_channels": 5, "ksize": 3, "padding": 1},
        "MaxPool": {"ksize": 2},
        "FullyConnected": {"out_channels": 5},
        "ResidualAdd": {"feedforward_func_kwargs": {"name": "Conv2dCell", "out_channels": 4, "ksize": 3, "padding": 1}},
        # Sequential declares `residual` because it passes it on to ResidualAdd, so the list contains one.
        "Sequential": {
            "list_of_func_kwargs": [
                {"name": "ResidualAdd", "feedforward_func_kwargs": {"name": "Conv2dCell", "out_channels": 4, "ksize": 3, "padding": 1}},
                {"name": "Conv2dCell", "out_channels": 5, "ksize": 3, "padding": 1},
                {"name": "MaxPool", "ksize": 2},
            ]
        },
    },
    "harbor": {},
}


def discovered_components() -> Iterator[Any]:
    for kind in CHECKS:
        for entry in list_components(kind):
            yield pytest.param(kind, entry, id=f"{kind}-{entry.qualified_name}")


def required_arguments(kind: str, cls: type) -> list[str]:
    params, _ = accepted_arguments(cls)
    provided = PROVIDED_ARGUMENTS[kind]
    return [name for name, p in params.items() if p.default is inspect.Parameter.empty and name not in provided]


@pytest.mark.parametrize(("kind", "entry"), list(discovered_components()))
def test_discovered_component_conforms(kind: str, entry: ComponentEntry) -> None:
    cls = entry.load()
    kwargs = CONFORMANCE_KWARGS[kind].get(entry.name)
    if kwargs is None and getattr(cls, "conformance_kwargs", None) is None:
        missing = required_arguments(kind, cls)
        if missing:
            pytest.fail(
                f"no conformance kwargs known for {kind} {entry.name!r} from {entry.distribution} {entry.version} "
                f"({entry.target}), whose constructor requires {missing}. Give the class a conformance_kwargs "
                f"attribute with small constructor arguments, or add an entry to CONFORMANCE_KWARGS in "
                f"tests/test_conformance.py"
            )
    CHECKS[kind](cls, **(kwargs or {}))


# -- built-in components, named directly -----------------------------------------------


def test_builtin_cells_are_discovered() -> None:
    names = {entry.name for entry in list_components("cell")}
    assert {"IdentityCell", "GRUCell", "LSTMCell", "TimeDecayRecurrentCell"} <= names


def test_identity_cell_passes_as_stateless() -> None:
    check_cell(IdentityCell)


def test_gru_passes_with_layernorm() -> None:
    check_cell(GRUCell, out_channels=4, ksize=3, layernorm=True)


def test_gru_passes_on_other_input_shape() -> None:
    check_cell(GRUCell, out_channels=6, ksize=[3, 1], input_shape=(6, 5, 7))


def test_time_decay_default_tau_has_no_visible_state() -> None:
    with pytest.raises(ConformanceError) as info:
        check_cell(TimeDecayRecurrentCell)
    assert info.value.property == "state threading"


def test_frozen_time_decay_passes() -> None:
    check_cell(TimeDecayRecurrentCell, tau=0.5, trainable=False)


def test_conv_with_time_varying_batchnorm_passes() -> None:
    check_memory_op(Conv2dCell, out_channels=4, ksize=3, padding=1, batchnorm=4, batchnorm_timevary=True, dropout=0.2)


def test_residual_add_with_projection_passes() -> None:
    check_memory_op(
        ResidualAdd,
        feedforward_func_kwargs={"name": "Conv2dCell", "out_channels": 6, "ksize": 3, "padding": 1, "stride": 2},
        residual_func_kwargs={"name": "Conv2dCell", "out_channels": 6, "ksize": 1, "stride": 2},
        activation="ReLU",
    )


def test_resize_concat_passes_with_resizing() -> None:
    check_harbor(ResizeConcat, input_shapes=[(3, 8, 8), (2, 4, 4)], output_spatial=(8, 8))


def test_harbors_pass_vector_inputs() -> None:
    check_harbor(IdentityHarbor, input_shapes=[(3,), (2,)], output_spatial=())


def test_identity_memory_op_passes_on_vectors() -> None:
    check_memory_op(Identity, input_shape=(5,))


def test_conformance_kwargs_attribute_is_used() -> None:
    class ConfiguredGRU(GRUCell):
        conformance_kwargs = {"out_channels": 4, "ksize": 3}

    with registered("cell", ConfiguredGRU):
        check_cell(ConfiguredGRU)


def test_invalid_conformance_kwargs_attribute() -> None:
    class BadlyConfigured(IdentityCell):
        conformance_kwargs = ["out_channels", 4]

    with pytest.raises(TypeError, match="conformance_kwargs must be a dict"):
        check_cell(BadlyConfigured)


def test_instance_instead_of_class() -> None:
    with pytest.raises(TypeError, match="pass the class"):
        check_cell(IdentityCell())


def test_properties_are_listed_in_order() -> None:
    assert CELL_PROPERTIES[0] == "construction"
    assert CELL_PROPERTIES[-1] == "graph"


# -- broken components are caught ---------------------------------------------------------


class registered:
    """Register ``cls`` in process under its class name for the duration of a ``with`` block."""

    def __init__(self, kind: str, cls: type) -> None:
        self.kind = kind
        self.cls = cls

    def __enter__(self) -> type:
        register(self.kind, self.cls.__name__, self.cls, override=True)
        return self.cls

    def __exit__(self, *exc_info: Any) -> None:
        unregister(self.kind, self.cls.__name__)


class LeakyCell(nn.Module):
    """A correct cell: a per-channel leaky integrator. The broken cells below change one thing each."""

    def __init__(self, input_in_channels: int) -> None:
        super().__init__()
        self.leak = nn.Parameter(torch.full((input_in_channels,), 0.5))

    def decay(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.leak.view(1, -1, *([1] * (inputs.dim() - 2)))

    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            state = torch.zeros_like(inputs)
        new_state = inputs + self.decay(inputs) * state
        return new_state, new_state


class FailingConstructorCell(LeakyCell):
    def __init__(self, input_in_channels: int, width: int) -> None:
        super().__init__(input_in_channels)


class NeedsStateCell(LeakyCell):
    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        new_state = inputs + self.decay(inputs) * state
        return new_state, new_state


class GrowingStateCell(LeakyCell):
    def forward(self, inputs: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        output, _ = super().forward(inputs, None if state is None else state[-1])
        return output, [output] if state is None else [*state, output]


class InPlaceCell(LeakyCell):
    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        inputs.mul_(2)
        return super().forward(inputs, state)


class StateIgnoringCell(LeakyCell):
    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return super().forward(inputs, None)


class UnusedParameterCell(LeakyCell):
    def __init__(self, input_in_channels: int) -> None:
        super().__init__(input_in_channels)
        self.unused = nn.Parameter(torch.ones(1))


class BatchMixingCell(LeakyCell):
    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return super().forward(inputs - inputs.mean(dim=0, keepdim=True), state)


class Float32Cell(LeakyCell):
    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        output, new_state = super().forward(inputs, state)
        return output.float(), new_state


class DefaultDeviceCell(LeakyCell):
    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            state = torch.zeros(inputs.shape, dtype=inputs.dtype)
        return super().forward(inputs, state)


class UnseededNoiseCell(LeakyCell):
    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training:
            generator = torch.Generator()
            generator.seed()
            noise = torch.rand(inputs.shape, generator=generator).to(inputs)
            inputs = inputs + noise
        return super().forward(inputs, state)


class NonPersistentBufferCell(LeakyCell):
    def __init__(self, input_in_channels: int) -> None:
        super().__init__(input_in_channels)
        self.register_buffer("gain", torch.rand(input_in_channels), persistent=False)

    def decay(self, inputs: torch.Tensor) -> torch.Tensor:
        return (self.leak * self.gain).view(1, -1, *([1] * (inputs.dim() - 2)))


class WrongHintCell(LeakyCell):
    """Works when built directly, but its type hint makes a config with a fractional leak invalid."""

    conformance_kwargs = {"initial_leak": 0.5}

    def __init__(self, input_in_channels: int, initial_leak: int = 1) -> None:
        super().__init__(input_in_channels)
        nn.init.constant_(self.leak, initial_leak)


def test_correct_leaky_cell_passes() -> None:
    with registered("cell", LeakyCell):
        check_cell(LeakyCell)


@pytest.mark.parametrize(
    ("cell_class", "prop"),
    [
        (FailingConstructorCell, "construction"),
        (NeedsStateCell, "first step"),
        (GrowingStateCell, "shapes"),
        (InPlaceCell, "no input mutation"),
        (StateIgnoringCell, "state threading"),
        (UnusedParameterCell, "gradients"),
        (BatchMixingCell, "batch independence"),
        (Float32Cell, "float64"),
        (DefaultDeviceCell, "device"),
        (UnseededNoiseCell, "determinism"),
        (NonPersistentBufferCell, "state_dict round trip"),
        (WrongHintCell, "graph"),
    ],
)
def test_broken_cell_is_caught(cell_class: type, prop: str) -> None:
    with registered("cell", cell_class), pytest.raises(ConformanceError) as info:
        check_cell(cell_class)
    assert info.value.property == prop
    assert cell_class.__qualname__ in str(info.value)


def test_unregistered_cell_is_caught() -> None:
    with pytest.raises(ConformanceError, match="tnn_core.register") as info:
        check_cell(LeakyCell)
    assert info.value.property == "registered name"
    assert '[project.entry-points."tnn.cells"]' in str(info.value)


def test_conformance_error_is_assertion_error() -> None:
    with pytest.raises(AssertionError, match="fails the 'state threading' check"):
        check_cell(StateIgnoringCell)


class BatchMixingOp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(dim=0, keepdim=True)


class InPlaceOp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.relu_()


class CountingOp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x * self.calls


class DetachingOp(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(in_channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach() * self.scale


@pytest.mark.parametrize(
    ("op_class", "prop"),
    [
        (BatchMixingOp, "batch independence"),
        (InPlaceOp, "no input mutation"),
        (CountingOp, "no hidden state"),
        (DetachingOp, "gradients"),
    ],
)
def test_broken_memory_op_is_caught(op_class: type, prop: str) -> None:
    with registered("memory_op", op_class), pytest.raises(ConformanceError) as info:
        check_memory_op(op_class)
    assert info.value.property == prop


class DroppingHarbor(IdentityHarbor):
    """Claims the channels of every input but returns the first one twice."""

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([inputs[0]] * 2, dim=1)[:, : self.out_channels]


class WrongChannelsHarbor(IdentityHarbor):
    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([*inputs, inputs[0]], dim=1)


class ListChangingHarbor(IdentityHarbor):
    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        inputs.reverse()
        return super().forward(list(reversed(inputs)))


class NoChannelsHarbor(nn.Module):
    def __init__(self, input_shapes: list[tuple[int, ...]], output_spatial: tuple[int, ...]) -> None:
        super().__init__()

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(inputs, dim=1)


@pytest.mark.parametrize(
    ("harbor_class", "prop"),
    [
        (DroppingHarbor, "gradients"),
        (WrongChannelsHarbor, "shapes"),
        (ListChangingHarbor, "no input mutation"),
        (NoChannelsHarbor, "construction"),
    ],
)
def test_broken_harbor_is_caught(harbor_class: type, prop: str) -> None:
    with registered("harbor", harbor_class), pytest.raises(ConformanceError) as info:
        check_harbor(harbor_class)
    assert info.value.property == prop
