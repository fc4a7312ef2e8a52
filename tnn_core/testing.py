"""Conformance checks for plugin cells, memory ops and harbor policies.

Plugin authors call these from their own tests::

    from tnn_core.testing import check_cell

    def test_my_cell_conforms():
        check_cell(MyCell, out_channels=4)

Each function builds the component from the keyword arguments it is given
and runs it on small random inputs. On a violation it raises
``ConformanceError`` naming the class and the first property violated. That
error is an ``AssertionError``, so pytest reports it as a test failure. The properties each kind must
have are listed in ``CELL_PROPERTIES``, ``MEMORY_OP_PROPERTIES`` and
``HARBOR_PROPERTIES`` and described in the docstrings of the functions.

Constructor arguments
---------------------
The keyword arguments are the constructor's, as a config would give them.
The arguments the framework provides (see ``tnn_core.protocols``) are
filled in with small defaults when the constructor declares them and the
caller does not give them:

=====================  =================================================
``input_shape``        ``(4, 8, 8)`` (cells and memory ops)
``input_in_channels``  ``input_shape[0]`` (cells)
``in_channels``        ``input_shape[0]`` (memory ops)
``num_timesteps``      ``4``
``res_channels``       ``3`` (cells)
``fb_channels``        ``2`` (cells); ``None`` runs without feedback input
``residual_shape``     ``input_shape`` (memory ops)
``input_shapes``       ``[(3, 8, 8), (2, 8, 8)]`` (harbors)
``output_spatial``     the spatial size of the first input shape (harbors)
=====================  =================================================

A provided argument given by the caller sets the shape of the test inputs
even when the constructor does not declare it, just as the graph infers it
for every component; ``check_cell(VectorCell, input_shape=(16,))`` runs a
cell on ``(batch, 16)`` vectors. Other keyword arguments go to the
constructor unchanged.

A component class may define a class attribute ``conformance_kwargs``, a
dict of the constructor arguments that make a small instance. The kit uses
it as the base and the caller's keyword arguments override its entries, so
``check_cell(MyCell)`` works without arguments, and so does the test of
``tests/test_conformance.py`` that checks every installed plugin.

Checks run on the CPU. The device check moves the module to CUDA when it is
available and to PyTorch's ``meta`` device otherwise, which catches tensors
created on the default device without running any computation.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .building import accepted_arguments
from .node import declared_forward_arguments
from .protocols import PROVIDED_ARGUMENTS
from .registry import KIND_LABELS, ComponentEntry, registry

logger = logging.getLogger(__name__)

__all__ = [
    "ConformanceError",
    "check_cell",
    "check_memory_op",
    "check_harbor",
    "CELL_PROPERTIES",
    "MEMORY_OP_PROPERTIES",
    "HARBOR_PROPERTIES",
    "registered_name",
    "iter_properties",
]

#: Batch size of the test inputs; above 1 so that mixing the batch shows.
BATCH_SIZE = 3
#: Steps each check runs when ``num_timesteps`` is ``None``; otherwise it runs ``num_timesteps`` steps,
#: so that every time-indexed parameter (time-varying batch norm) is used.
NUM_STEPS = 3
#: Seed for parameters and inputs.
SEED = 0

DEFAULT_INPUT_SHAPE = (4, 8, 8)
DEFAULT_NUM_TIMESTEPS = 4
DEFAULT_RES_CHANNELS = 3
DEFAULT_FB_CHANNELS = 2
DEFAULT_HARBOR_INPUT_SHAPES = ((3, 8, 8), (2, 8, 8))

#: Properties every cell must have, in the order ``check_cell`` checks them.
CELL_PROPERTIES = (
    "construction",
    "first step",
    "shapes",
    "no input mutation",
    "state threading",
    "gradients",
    "batch independence",
    "float64",
    "device",
    "determinism",
    "state_dict round trip",
    "registered name",
    "graph",
)

#: Properties every memory op must have, in the order ``check_memory_op`` checks them.
MEMORY_OP_PROPERTIES = (
    "construction",
    "call",
    "shapes",
    "no input mutation",
    "no hidden state",
    "gradients",
    "batch independence",
    "float64",
    "device",
    "determinism",
    "state_dict round trip",
    "registered name",
    "graph",
)

#: Properties every harbor policy must have, in the order ``check_harbor`` checks them (the memory ops' list).
HARBOR_PROPERTIES = MEMORY_OP_PROPERTIES

# Components of pytorch-tnn that the kit's graphs put around the one under test. The
# qualified names keep plugins that reuse these names from being picked instead.
_BUILTIN = "pytorch-tnn"


class ConformanceError(AssertionError):
    """A component violates one property of its kind's contract.

    Attributes:
        component: the class checked, e.g. ``"my_pkg.cell.MyCell"``.
        property: the violated property, one of the ``*_PROPERTIES`` names.
        detail: what went wrong.
    """

    def __init__(self, component: str, property: str, detail: str) -> None:
        self.component = component
        self.property = property
        self.detail = detail
        super().__init__(f"{component} fails the {property!r} check: {detail}")


# -- the component under test --------------------------------------------------------


@dataclass
class _Subject:
    """A component class with its constructor arguments and the shapes of its test inputs."""

    kind: str
    cls: type
    constructor_kwargs: dict[str, Any]
    config_kwargs: dict[str, Any]
    context: dict[str, Any]
    forward_arguments: frozenset[str] = field(default_factory=frozenset)

    @property
    def name(self) -> str:
        return f"{self.cls.__module__}.{self.cls.__qualname__}"

    def fail(self, prop: str, detail: str) -> ConformanceError:
        return ConformanceError(self.name, prop, detail)

    def build(self, seed: int = SEED) -> nn.Module:
        """Build an instance after seeding torch's global generator with ``seed``."""
        torch.manual_seed(seed)
        try:
            module = self.cls(**self.constructor_kwargs)
        except Exception as exc:  # any failure of third-party code is the finding
            raise self.fail(
                "construction",
                f"{self.cls.__qualname__}(**{self.constructor_kwargs!r}) raised {type(exc).__name__}: {exc}. "
                f"Pass the constructor arguments a small instance needs as keyword arguments, "
                f"or set the class attribute conformance_kwargs",
            ) from exc
        if not isinstance(module, nn.Module):
            raise self.fail("construction", f"an instance is a {type(module).__name__}, not a torch.nn.Module")
        return module


def _prepare(kind: str, cls: Any, kwargs: Mapping[str, Any]) -> _Subject:
    """Merge ``conformance_kwargs`` with ``kwargs`` and fill in the framework-provided arguments."""
    if not isinstance(cls, type):
        raise TypeError(f"expected a {KIND_LABELS[kind]} class, got {cls!r}; pass the class, not an instance")

    base = getattr(cls, "conformance_kwargs", None) or {}
    if not isinstance(base, Mapping):
        raise TypeError(
            f"{cls.__qualname__}.conformance_kwargs must be a dict of constructor arguments, got {base!r}"
        )
    given = {**base, **kwargs}

    context = _context(kind, given)
    params, _ = accepted_arguments(cls)
    provided_names = PROVIDED_ARGUMENTS[kind]
    config_kwargs = {key: value for key, value in given.items() if key not in provided_names}
    constructor_kwargs = dict(config_kwargs)
    for key in provided_names:
        if key in params:
            constructor_kwargs[key] = context[key]
    return _Subject(kind, cls, constructor_kwargs, config_kwargs, context)


def _context(kind: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Return every provided argument of ``kind``: the given value, else the kit's default."""
    if kind == "harbor":
        shapes = [tuple(shape) for shape in given.get("input_shapes", DEFAULT_HARBOR_INPUT_SHAPES)]
        spatial = tuple(given.get("output_spatial", shapes[0][1:] if shapes else ()))
        return {"input_shapes": shapes, "output_spatial": spatial}

    channels_key = "input_in_channels" if kind == "cell" else "in_channels"
    if "input_shape" in given:
        input_shape = tuple(given["input_shape"])
    elif given.get(channels_key) is not None:
        input_shape = (int(given[channels_key]), *DEFAULT_INPUT_SHAPE[1:])
    else:
        input_shape = DEFAULT_INPUT_SHAPE
    context: dict[str, Any] = {
        "input_shape": input_shape,
        channels_key: input_shape[0],
        "num_timesteps": given.get("num_timesteps", DEFAULT_NUM_TIMESTEPS),
    }
    if kind == "cell":
        context["res_channels"] = given.get("res_channels", DEFAULT_RES_CHANNELS)
        context["fb_channels"] = given.get("fb_channels", DEFAULT_FB_CHANNELS)
    else:
        context["residual_shape"] = tuple(given.get("residual_shape", input_shape))
    return context


def _run_checks(subject: _Subject, checks: Sequence[tuple[str, Callable[[_Subject], None]]]) -> None:
    """Run each check in order; an unexpected exception becomes a ``ConformanceError`` of that check."""
    for prop, check in checks:
        try:
            check(subject)
        except ConformanceError:
            raise
        except Exception as exc:  # third-party code may raise anything; report it under the property
            raise subject.fail(prop, f"raised {type(exc).__name__}: {exc}") from exc
        logger.debug("%s passes %r", subject.name, prop)


# -- tensors ---------------------------------------------------------------------------


def _random(shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=generator)


def _tensors(value: Any) -> list[torch.Tensor]:
    """Return the tensors in a nested state (tensor, tuple, list or dict), in a fixed order."""
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, Mapping):
        return [t for key in sorted(value) for t in _tensors(value[key])]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors(item)]
    return []


def _structure(value: Any) -> Any:
    """Return the nesting and tensor shapes of a state, for comparing states of two steps."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, Mapping):
        return {key: _structure(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [_structure(item) for item in value]
    return type(value).__name__


def _convert(value: Any, convert: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply ``convert`` to every tensor of a nested value."""
    if isinstance(value, torch.Tensor):
        return convert(value)
    if isinstance(value, Mapping):
        return {key: _convert(item, convert) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_convert(item, convert) for item in value)
    return value


def _close(a: torch.Tensor, b: torch.Tensor, tolerance: float = 1e-5) -> bool:
    """Return whether two results agree up to rounding (``tolerance`` relative to their largest value)."""
    if a.shape != b.shape:
        return False
    scale = max(1.0, float(a.detach().abs().max())) if a.numel() else 1.0
    return torch.allclose(a.detach(), b.detach(), rtol=10 * tolerance, atol=tolerance * scale)


# Yields (where, element output from the whole batch, output of the element run alone).
BatchComparison = Callable[[nn.Module, torch.dtype], Iterator[tuple[str, torch.Tensor, torch.Tensor]]]


def _check_batch_independence(subject: _Subject, compare: BatchComparison) -> None:
    """Fail unless each batch element's output equals that of a run on the element alone.

    Float32 runs differ between batch sizes by rounding, which normalisations
    can amplify beyond a fixed tolerance. A mismatch in float32 is therefore
    confirmed in float64 with a tight tolerance before it is reported.
    """
    with torch.no_grad():
        mismatch = next((where for where, together, alone in compare(subject.build().eval(), torch.float32)
                         if not _close(together, alone)), None)
        if mismatch is None:
            return
        try:
            module64 = subject.build().to(torch.float64).eval()
            confirmed = next((where for where, together, alone in compare(module64, torch.float64)
                              if not _close(together, alone, tolerance=1e-10)), None)
        except Exception:  # the float64 check reports this; keep the float32 finding
            confirmed = mismatch
    if confirmed is not None:
        raise subject.fail("batch independence", f"{confirmed} differs when run with {BATCH_SIZE - 1} other elements "
                           f"than when run alone; do not reduce over the batch dimension (dim 0) in eval mode")
    logger.debug("%s: float32 batch differences at %s are rounding (float64 agrees)", subject.name, mismatch)


def _device_for_check() -> torch.device:
    """Return CUDA when available, else the ``meta`` device (checks placement without computing)."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("meta")


def _check_placement(subject: _Subject, prop: str, what: str, value: Any, dtype: torch.dtype | None, device: torch.device | None) -> None:
    for index, tensor in enumerate(_tensors(value)):
        if dtype is not None and tensor.dtype != dtype:
            raise subject.fail(prop, f"{what} tensor {index} is {tensor.dtype}, but the module and its inputs are {dtype}; "
                               f"create new tensors with the input's dtype (torch.zeros_like, new_zeros)")
        if device is not None and tensor.device.type != device.type:
            raise subject.fail(prop, f"{what} tensor {index} is on {tensor.device}, but the module and its inputs are on "
                               f"{device}; create new tensors on the input's device (torch.zeros_like, new_zeros)")


def _parameters_without_gradient(module: nn.Module) -> list[str]:
    return [name for name, p in module.named_parameters() if p.requires_grad and p.grad is None]


def _parameters_with_invalid_gradient(module: nn.Module) -> list[str]:
    return [
        name for name, p in module.named_parameters()
        if p.requires_grad and p.grad is not None and not torch.isfinite(p.grad).all()
    ]


def _check_gradients(subject: _Subject, module: nn.Module) -> None:
    missing = _parameters_without_gradient(module)
    if missing:
        raise subject.fail("gradients", f"trainable parameters {missing} got no gradient from the outputs; use them in "
                           f"forward, set requires_grad=False, or register them as buffers")
    invalid = _parameters_with_invalid_gradient(module)
    if invalid:
        raise subject.fail("gradients", f"trainable parameters {invalid} got NaN or infinite gradients")


def _weighted_sum(output: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # Random weights, because a plain sum has zero gradient through normalisations.
    weights = torch.rand(output.shape, generator=generator).to(dtype=output.dtype, device=output.device)
    return (output * weights).sum()


def _check_unchanged(subject: _Subject, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    for key, old in before.items():
        for index, (old_tensor, new_tensor) in enumerate(zip(_tensors(old), _tensors(after[key]))):
            if not torch.equal(old_tensor, new_tensor):
                raise subject.fail("no input mutation", f"forward changed its argument {key!r} (tensor {index}) in place; "
                                   f"compute new tensors instead (x = x + y, not x += y)")


def _check_state_dicts_equal(subject: _Subject, prop: str, a: nn.Module, b: nn.Module) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    if list(state_a) != list(state_b):
        raise subject.fail(prop, f"two instances have different state_dict keys: {list(state_a)} and {list(state_b)}")
    for key in state_a:
        if not torch.equal(state_a[key], state_b[key]):
            raise subject.fail(prop, f"two instances built after torch.manual_seed({SEED}) differ in {key!r}; draw "
                               f"random numbers from torch's global generator, not from random, numpy or a fresh "
                               f"torch.Generator")


# -- cells -----------------------------------------------------------------------------


def check_cell(cell_class: type, **kwargs: Any) -> None:
    """Check that a recurrent cell class follows the cell contract of ``tnn_core.protocols``.

    ``kwargs`` are constructor arguments (see the module docstring for the
    framework-provided ones the kit fills in and for ``conformance_kwargs``).
    A cell that declares ``fb_input``, ``res_input`` or ``curr_timestep`` in
    ``forward`` gets them at every step. Properties, checked in this order:

    * **construction**: the class builds from the arguments and is an ``nn.Module``.
    * **first step**: ``forward(inputs, None)`` works and returns
      ``(output, state)`` with ``output`` a tensor of the input's batch size.
    * **shapes**: over several steps the output shape and the state's
      structure and shapes stay the same, the output shape does not depend
      on the batch size, and ``output.shape[1]`` equals the cell's
      ``out_channels`` attribute when it has an integer one.
    * **no input mutation**: ``forward`` changes none of its arguments in place
      (inputs, state, ``fb_input``, ``res_input``).
    * **state threading**: in eval mode, the output at step 2 differs from the
      output of a fresh step with ``state=None`` for the same input. A
      stateless cell, one that returns ``None`` as its state at every step
      (an identity-like cell), skips this check.
    * **gradients**: every parameter with ``requires_grad`` gets a finite
      gradient from the outputs of a few steps and the final state, in train mode.
    * **batch independence**: in eval mode, every batch element's outputs
      equal those of a run on that element alone, up to float32 rounding. A
      float32 mismatch is confirmed in float64 before it is reported.
    * **float64**: after ``.to(torch.float64)`` the outputs and the state are
      float64 for float64 inputs.
    * **device**: after ``.to(device)`` (CUDA when available, else ``meta``)
      the outputs and the state are on that device.
    * **determinism**: two instances built after the same ``torch.manual_seed``
      have equal state dicts and, with the same seed before the run, give
      identical outputs in train mode.
    * **state_dict round trip**: a fresh instance (other seed) that loads a
      trained instance's ``state_dict`` gives identical outputs in eval mode.
    * **registered name**: the class is registered as a ``tnn.cells`` entry
      point or with ``tnn_core.register("cell", ...)``.
    * **graph**: a small ``TemporalGraph`` whose config names the cell by its
      registered name builds, and its biological and full unrolls run. The
      cell's node gets a feedback input unless ``fb_channels=None``.

    Raises:
        ConformanceError: naming the class and the first property it violates.
        TypeError: ``cell_class`` is not a class, or its ``conformance_kwargs`` is not a dict.
    """
    subject = _prepare("cell", cell_class, kwargs)
    module = subject.build()
    subject.forward_arguments = declared_forward_arguments(module)
    _run_checks(subject, [
        ("first step", _cell_first_step),
        ("shapes", _cell_shapes),
        ("no input mutation", _cell_no_input_mutation),
        ("state threading", _cell_state_threading),
        ("gradients", _cell_gradients),
        ("batch independence", _cell_batch_independence),
        ("float64", _cell_float64),
        ("device", _cell_device),
        ("determinism", _cell_determinism),
        ("state_dict round trip", _cell_state_dict_round_trip),
        ("graph", _check_graph),
    ])


def _num_steps(subject: _Subject) -> int:
    return subject.context.get("num_timesteps") or NUM_STEPS


def _cell_steps(subject: _Subject, batch: int = BATCH_SIZE, steps: int | None = None, seed: int = SEED) -> list[dict[str, Any]]:
    """Return the arguments of ``steps`` cell calls: ``inputs`` plus the declared optional ones."""
    generator = torch.Generator().manual_seed(seed)
    context = subject.context
    spatial = tuple(context["input_shape"][1:])
    declared = subject.forward_arguments
    calls = []
    for step in range(_num_steps(subject) if steps is None else steps):
        call: dict[str, Any] = {"inputs": _random((batch, *context["input_shape"]), generator)}
        if "res_input" in declared:
            call["res_input"] = _random((batch, context["res_channels"], *spatial), generator)
        if "fb_input" in declared:
            fb_channels = context["fb_channels"]
            call["fb_input"] = None if fb_channels is None else _random((batch, fb_channels, *spatial), generator)
        if "curr_timestep" in declared:
            call["curr_timestep"] = step
        calls.append(call)
    return calls


def _slice_calls(calls: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
    return [{key: value[index : index + 1] if isinstance(value, torch.Tensor) else value for key, value in call.items()} for call in calls]


def _convert_calls(calls: list[dict[str, Any]], convert: Callable[[torch.Tensor], torch.Tensor]) -> list[dict[str, Any]]:
    return [{key: _convert(value, convert) for key, value in call.items()} for call in calls]


def _call_cell(cell: nn.Module, call: Mapping[str, Any], state: Any) -> tuple[torch.Tensor, Any]:
    arguments = dict(call)
    inputs = arguments.pop("inputs")
    result = cell(inputs, state, **arguments)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(f"forward must return (output, state), got {type(result).__name__}")
    return result[0], result[1]


def _unroll_cell(cell: nn.Module, calls: list[dict[str, Any]], state: Any = None) -> list[tuple[torch.Tensor, Any]]:
    results = []
    for call in calls:
        output, state = _call_cell(cell, call, state)
        results.append((output, state))
    return results


def _cell_first_step(subject: _Subject) -> None:
    cell = subject.build()
    call = _cell_steps(subject, steps=1)[0]
    try:
        result = cell(call["inputs"], None, **{k: v for k, v in call.items() if k != "inputs"})
    except Exception as exc:
        raise subject.fail("first step", f"forward(inputs, state=None) raised {type(exc).__name__}: {exc}. At the first "
                           f"step the state is None and the cell builds its zero state from the input") from exc
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise subject.fail("first step", f"forward must return (output, new_state), got {type(result).__name__}")
    output = result[0]
    if not isinstance(output, torch.Tensor):
        raise subject.fail("first step", f"the output must be a tensor, got {type(output).__name__}")
    if output.dim() < 2 or output.shape[0] != BATCH_SIZE:
        raise subject.fail("first step", f"the output must be (batch, ...) with batch {BATCH_SIZE}, got shape {tuple(output.shape)}")


def _cell_shapes(subject: _Subject) -> None:
    cell = subject.build().eval()
    with torch.no_grad():
        results = _unroll_cell(cell, _cell_steps(subject))
        single = _unroll_cell(cell, _cell_steps(subject, batch=1, steps=1))

    first_output, first_state = results[0]
    for step, (output, state) in enumerate(results[1:], start=1):
        if output.shape != first_output.shape:
            raise subject.fail("shapes", f"the output is {tuple(first_output.shape)} at step 0 but {tuple(output.shape)} "
                               f"at step {step}; the output shape must not change between steps")
        if _structure(state) != _structure(first_state):
            raise subject.fail("shapes", f"the state is {_structure(first_state)} after step 0 but {_structure(state)} "
                               f"after step {step}; the state must keep its structure and shapes")
    if single[0][0].shape[1:] != first_output.shape[1:]:
        raise subject.fail("shapes", f"the output is {tuple(first_output.shape)} for batch {BATCH_SIZE} but "
                           f"{tuple(single[0][0].shape)} for batch 1; only the batch dimension may depend on the batch size")

    out_channels = getattr(cell, "out_channels", None)
    if isinstance(out_channels, int) and not isinstance(out_channels, bool) and first_output.shape[1] != out_channels:
        raise subject.fail("shapes", f"the cell's out_channels attribute is {out_channels} but its output has "
                           f"{first_output.shape[1]} channels (shape {tuple(first_output.shape)})")


def _cell_no_input_mutation(subject: _Subject) -> None:
    cell = subject.build()
    state = None
    with torch.no_grad():
        for call in _cell_steps(subject):
            before = {key: _convert(value, torch.clone) for key, value in call.items()}
            before["state"] = _convert(state, torch.clone)
            _, new_state = _call_cell(cell, call, state)
            _check_unchanged(subject, before, {**call, "state": state})
            state = new_state


def _cell_state_threading(subject: _Subject) -> None:
    cell = subject.build().eval()
    calls = _cell_steps(subject)
    with torch.no_grad():
        results = _unroll_cell(cell, calls)
        if all(state is None for _, state in results):
            logger.debug("%s returns no state, so it is stateless and skips 'state threading'", subject.name)
            return
        step = min(2, len(calls) - 1)
        if step == 0:
            logger.debug("%s runs one step only (num_timesteps=1), so 'state threading' is skipped", subject.name)
            return
        threaded = results[step][0]
        fresh, _ = _call_cell(cell, calls[step], None)
    if torch.equal(threaded, fresh):
        raise subject.fail("state threading", f"the output at step {step} equals the output of a fresh step with state=None for "
                           "the same input, so the state does not reach the output. Use the state in forward, or return "
                           "None as the state if the cell is stateless")


def _cell_gradients(subject: _Subject) -> None:
    cell = subject.build().train()
    generator = torch.Generator().manual_seed(SEED + 1)
    results = _unroll_cell(cell, _cell_steps(subject))
    # The final state counts too: what a cell computes at the last step may reach its output only at the next one.
    terms = [output for output, _ in results] + [t for t in _tensors(results[-1][1]) if t.is_floating_point()]
    loss = sum(_weighted_sum(term, generator) for term in terms)
    if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
        if any(p.requires_grad for p in cell.parameters()):
            raise subject.fail("gradients", "the outputs do not depend on any trainable parameter (no autograd graph); "
                               "do not detach the output or run forward under torch.no_grad")
        return
    loss.backward()
    _check_gradients(subject, cell)


def _cell_batch_independence(subject: _Subject) -> None:
    calls = _cell_steps(subject)

    def compare(cell: nn.Module, dtype: torch.dtype) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
        converted = _convert_calls(calls, lambda t: t.to(dtype))
        together = _unroll_cell(cell, converted)
        for index in range(BATCH_SIZE):
            alone = _unroll_cell(cell, _slice_calls(converted, index))
            for step, ((batch_output, _), (single_output, _)) in enumerate(zip(together, alone)):
                yield f"the output of batch element {index} at step {step}", batch_output[index : index + 1], single_output

    _check_batch_independence(subject, compare)


def _cell_float64(subject: _Subject) -> None:
    cell = subject.build().to(torch.float64).eval()
    calls = _convert_calls(_cell_steps(subject), lambda t: t.to(torch.float64))
    with torch.no_grad():
        for step, (output, state) in enumerate(_unroll_cell(cell, calls)):
            _check_placement(subject, "float64", f"the output at step {step}", output, torch.float64, None)
            _check_placement(subject, "float64", f"the state after step {step}", state, torch.float64, None)


def _cell_device(subject: _Subject) -> None:
    device = _device_for_check()
    cell = subject.build().to(device).eval()
    calls = _convert_calls(_cell_steps(subject), lambda t: t.to(device))
    with torch.no_grad():
        for step, (output, state) in enumerate(_unroll_cell(cell, calls)):
            _check_placement(subject, "device", f"the output at step {step}", output, None, device)
            _check_placement(subject, "device", f"the state after step {step}", state, None, device)


def _cell_determinism(subject: _Subject) -> None:
    first, second = subject.build(), subject.build()
    _check_state_dicts_equal(subject, "determinism", first, second)
    calls = _cell_steps(subject)
    runs = []
    for cell in (first, second):
        torch.manual_seed(SEED + 2)
        with torch.no_grad():
            runs.append(_unroll_cell(cell.train(), calls))
    for step, ((a, _), (b, _)) in enumerate(zip(*runs)):
        if not torch.equal(a, b):
            raise subject.fail("determinism", f"two runs after the same torch.manual_seed give different outputs at step "
                               f"{step}; draw random numbers from torch's global generator only")


def _cell_state_dict_round_trip(subject: _Subject) -> None:
    trained = subject.build().train()
    calls = _cell_steps(subject)
    with torch.no_grad():
        _unroll_cell(trained, calls)  # updates running statistics such as batch norm's
    fresh = subject.build(seed=SEED + 3)
    try:
        fresh.load_state_dict(trained.state_dict())
    except Exception as exc:
        raise subject.fail("state_dict round trip", f"a fresh instance cannot load another's state_dict: "
                           f"{type(exc).__name__}: {exc}") from exc
    _compare_loaded(subject, trained, fresh, lambda module: [out for out, _ in _unroll_cell(module, calls)])


def _compare_loaded(subject: _Subject, trained: nn.Module, fresh: nn.Module, run: Callable[[nn.Module], list[torch.Tensor]]) -> None:
    with torch.no_grad():
        expected = run(trained.eval())
        actual = run(fresh.eval())
    for index, (a, b) in enumerate(zip(expected, actual)):
        if not torch.equal(a, b):
            raise subject.fail("state_dict round trip", f"a fresh instance that loaded the state_dict gives a different "
                               f"output (call {index}); keep every tensor the output depends on in a parameter or a "
                               f"persistent buffer")


# -- memory ops ------------------------------------------------------------------------


def check_memory_op(op_class: type, **kwargs: Any) -> None:
    """Check that a memory op class follows the memory-op contract of ``tnn_core.protocols``.

    ``kwargs`` are constructor arguments (see the module docstring). An op
    whose ``forward`` declares ``curr_timestep`` gets the step index, and one
    that declares ``residual`` gets a tensor of ``residual_shape`` (the harbor
    output of a ``residual: true`` node). Properties, in this order:

    * **construction**: the class builds from the arguments and is an ``nn.Module``.
    * **call**: ``forward`` returns one tensor with the input's batch size.
    * **shapes**: the output shape does not depend on the batch size or the
      time step.
    * **no input mutation**: ``forward`` changes neither ``x`` nor ``residual`` in place.
    * **no hidden state**: in eval mode, calling with ``x1``, ``x2``, then ``x1``
      again gives the first output again (memory ops are stateless).
    * **gradients**: every trainable parameter and the input get finite gradients.
    * **batch independence**: in eval mode, each batch element's output
      equals that of a call on the element alone.
    * **float64**, **device**, **determinism**, **state_dict round trip**:
      as for cells (see ``check_cell``).
    * **registered name**: the class is registered in ``tnn.memory_ops``.
    * **graph**: a ``TemporalGraph`` that uses the op as a node's pre-memory op
      (post-memory op of a ``residual: true`` node when ``forward`` declares
      ``residual``) builds and unrolls.

    Raises:
        ConformanceError: naming the class and the first property it violates.
        TypeError: ``op_class`` is not a class, or its ``conformance_kwargs`` is not a dict.
    """
    subject = _prepare("memory_op", op_class, kwargs)
    module = subject.build()
    subject.forward_arguments = declared_forward_arguments(module)
    _run_checks(subject, [
        ("call", _op_call),
        ("shapes", _op_shapes),
        ("no input mutation", _op_no_input_mutation),
        ("no hidden state", _op_no_hidden_state),
        ("gradients", _op_gradients),
        ("batch independence", _op_batch_independence),
        ("float64", _op_float64),
        ("device", _op_device),
        ("determinism", _op_determinism),
        ("state_dict round trip", _op_state_dict_round_trip),
        ("graph", _check_graph),
    ])


def _op_calls(subject: _Subject, batch: int = BATCH_SIZE, seed: int = SEED) -> list[dict[str, Any]]:
    """Return the arguments of one call per time step: ``x`` plus the declared optional ones."""
    generator = torch.Generator().manual_seed(seed)
    context = subject.context
    calls = []
    for step in range(_num_steps(subject)):
        call: dict[str, Any] = {"x": _random((batch, *context["input_shape"]), generator)}
        if "residual" in subject.forward_arguments:
            call["residual"] = _random((batch, *context["residual_shape"]), generator)
        if "curr_timestep" in subject.forward_arguments:
            call["curr_timestep"] = step
        calls.append(call)
    return calls


def _call_op(op: nn.Module, call: Mapping[str, Any]) -> torch.Tensor:
    arguments = dict(call)
    x = arguments.pop("x")
    output = op(x, **arguments)
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"forward must return one tensor, got {type(output).__name__}")
    return output


def _op_call(subject: _Subject) -> None:
    op = subject.build()
    call = _op_calls(subject)[0]
    try:
        output = op(call["x"], **{k: v for k, v in call.items() if k != "x"})
    except Exception as exc:
        raise subject.fail("call", f"forward on input of shape {tuple(call['x'].shape)} raised {type(exc).__name__}: "
                           f"{exc}") from exc
    if not isinstance(output, torch.Tensor):
        raise subject.fail("call", f"forward must return one tensor, got {type(output).__name__}")
    if output.dim() < 2 or output.shape[0] != BATCH_SIZE:
        raise subject.fail("call", f"the output must be (batch, ...) with batch {BATCH_SIZE}, got shape {tuple(output.shape)}")


def _op_shapes(subject: _Subject) -> None:
    op = subject.build().eval()
    with torch.no_grad():
        outputs = [_call_op(op, call) for call in _op_calls(subject)]
        single = _call_op(op, _op_calls(subject, batch=1)[0])
    for step, output in enumerate(outputs[1:], start=1):
        if output.shape != outputs[0].shape:
            raise subject.fail("shapes", f"the output is {tuple(outputs[0].shape)} at step 0 but {tuple(output.shape)} at "
                               f"step {step}")
    if single.shape[1:] != outputs[0].shape[1:]:
        raise subject.fail("shapes", f"the output is {tuple(outputs[0].shape)} for batch {BATCH_SIZE} but "
                           f"{tuple(single.shape)} for batch 1; only the batch dimension may depend on the batch size")


def _op_no_input_mutation(subject: _Subject) -> None:
    op = subject.build()
    with torch.no_grad():
        for call in _op_calls(subject):
            before = {key: _convert(value, torch.clone) for key, value in call.items()}
            _call_op(op, call)
            _check_unchanged(subject, before, call)


def _op_no_hidden_state(subject: _Subject) -> None:
    op = subject.build().eval()
    first, second = _op_calls(subject)[:1], _op_calls(subject, seed=SEED + 1)[:1]
    with torch.no_grad():
        before = _call_op(op, first[0])
        _call_op(op, second[0])
        after = _call_op(op, first[0])
    if not torch.equal(before, after):
        raise subject.fail("no hidden state", "the same input gives a different output after another call in eval mode; "
                           "memory ops must not keep state between calls (the recurrent cell holds the state)")


def _op_gradients(subject: _Subject) -> None:
    op = subject.build().train()
    generator = torch.Generator().manual_seed(SEED + 1)
    calls = _op_calls(subject)
    for call in calls:
        for key in ("x", "residual"):
            if key in call:
                call[key].requires_grad_(True)
    loss = sum(_weighted_sum(_call_op(op, call), generator) for call in calls)
    if not loss.requires_grad:
        raise subject.fail("gradients", "the output does not depend on the input through autograd; do not detach it")
    loss.backward()
    _check_gradients(subject, op)
    for key in ("x", "residual"):
        if key in calls[0] and calls[0][key].grad is None:
            raise subject.fail("gradients", f"the input {key!r} gets no gradient, so the output does not depend on it")


def _op_batch_independence(subject: _Subject) -> None:
    calls = _op_calls(subject)

    def compare(op: nn.Module, dtype: torch.dtype) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
        for step, call in enumerate(_convert_calls(calls, lambda t: t.to(dtype))):
            together = _call_op(op, call)
            for index in range(BATCH_SIZE):
                alone = _call_op(op, _slice_calls([call], index)[0])
                yield f"the output of batch element {index} (call {step})", together[index : index + 1], alone

    _check_batch_independence(subject, compare)


def _op_float64(subject: _Subject) -> None:
    op = subject.build().to(torch.float64).eval()
    with torch.no_grad():
        for step, call in enumerate(_convert_calls(_op_calls(subject), lambda t: t.to(torch.float64))):
            _check_placement(subject, "float64", f"the output of call {step}", _call_op(op, call), torch.float64, None)


def _op_device(subject: _Subject) -> None:
    device = _device_for_check()
    op = subject.build().to(device).eval()
    with torch.no_grad():
        for step, call in enumerate(_convert_calls(_op_calls(subject), lambda t: t.to(device))):
            _check_placement(subject, "device", f"the output of call {step}", _call_op(op, call), None, device)


def _op_determinism(subject: _Subject) -> None:
    first, second = subject.build(), subject.build()
    _check_state_dicts_equal(subject, "determinism", first, second)
    calls = _op_calls(subject)
    runs = []
    for op in (first, second):
        torch.manual_seed(SEED + 2)
        with torch.no_grad():
            runs.append([_call_op(op.train(), call) for call in calls])
    for step, (a, b) in enumerate(zip(*runs)):
        if not torch.equal(a, b):
            raise subject.fail("determinism", f"two runs after the same torch.manual_seed give different outputs (call "
                               f"{step}); draw random numbers from torch's global generator only")


def _op_state_dict_round_trip(subject: _Subject) -> None:
    trained = subject.build().train()
    calls = _op_calls(subject)
    with torch.no_grad():
        for call in calls:
            _call_op(trained, call)  # updates running statistics such as batch norm's
    fresh = subject.build(seed=SEED + 3)
    try:
        fresh.load_state_dict(trained.state_dict())
    except Exception as exc:
        raise subject.fail("state_dict round trip", f"a fresh instance cannot load another's state_dict: "
                           f"{type(exc).__name__}: {exc}") from exc
    _compare_loaded(subject, trained, fresh, lambda module: [_call_op(module, call) for call in calls])


# -- harbor policies -------------------------------------------------------------------


def check_harbor(harbor_class: type, **kwargs: Any) -> None:
    """Check that a harbor policy class follows the harbor contract of ``tnn_core.protocols``.

    ``kwargs`` are constructor arguments; ``input_shapes`` and
    ``output_spatial`` default to two map inputs of one spatial size (see the
    module docstring). Properties, in this order:

    * **construction**: the class builds, is an ``nn.Module`` and has an
      integer ``out_channels`` attribute.
    * **call**: ``forward(inputs)`` takes the list of input tensors and returns
      one tensor.
    * **shapes**: the output is ``(batch, out_channels, *output_spatial)`` for
      batch sizes 1 and 3.
    * **no input mutation**: ``forward`` changes neither the list nor its tensors.
    * **no hidden state**: in eval mode the same inputs give the same output
      after another call.
    * **gradients**: every trainable parameter and every input get finite
      gradients (a harbor must not drop an input).
    * **batch independence**, **float64**, **device**, **determinism**,
      **state_dict round trip**: as for cells (see ``check_cell``).
    * **registered name**: the class is registered in ``tnn.harbors``.
    * **graph**: a ``TemporalGraph`` whose node with a feedforward and (for two
      or more ``input_shapes``) a feedback input uses the harbor by its
      registered name builds and unrolls.

    Raises:
        ConformanceError: naming the class and the first property it violates.
        TypeError: ``harbor_class`` is not a class, or its ``conformance_kwargs`` is not a dict.
    """
    subject = _prepare("harbor", harbor_class, kwargs)
    module = subject.build()
    out_channels = getattr(module, "out_channels", None)
    if not isinstance(out_channels, int) or isinstance(out_channels, bool):
        raise subject.fail("construction", f"an instance must have an integer out_channels attribute (the output's "
                           f"channel count), got {out_channels!r}")
    _run_checks(subject, [
        ("call", _harbor_call),
        ("shapes", _harbor_shapes),
        ("no input mutation", _harbor_no_input_mutation),
        ("no hidden state", _harbor_no_hidden_state),
        ("gradients", _harbor_gradients),
        ("batch independence", _harbor_batch_independence),
        ("float64", _harbor_float64),
        ("device", _harbor_device),
        ("determinism", _harbor_determinism),
        ("state_dict round trip", _harbor_state_dict_round_trip),
        ("graph", _check_graph),
    ])


def _harbor_inputs(subject: _Subject, batch: int = BATCH_SIZE, seed: int = SEED) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [_random((batch, *shape), generator) for shape in subject.context["input_shapes"]]


def _call_harbor(harbor: nn.Module, inputs: list[torch.Tensor]) -> torch.Tensor:
    output = harbor(inputs)
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"forward must return one tensor, got {type(output).__name__}")
    return output


def _harbor_call(subject: _Subject) -> None:
    harbor = subject.build()
    inputs = _harbor_inputs(subject)
    try:
        output = harbor(inputs)
    except Exception as exc:
        shapes = [tuple(t.shape) for t in inputs]
        raise subject.fail("call", f"forward on inputs of shapes {shapes} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(output, torch.Tensor):
        raise subject.fail("call", f"forward must return one tensor, got {type(output).__name__}")


def _harbor_shapes(subject: _Subject) -> None:
    harbor = subject.build().eval()
    spatial = subject.context["output_spatial"]
    with torch.no_grad():
        for batch in (BATCH_SIZE, 1):
            output = _call_harbor(harbor, _harbor_inputs(subject, batch=batch))
            expected = (batch, harbor.out_channels, *spatial)
            if tuple(output.shape) != expected:
                raise subject.fail("shapes", f"the output is {tuple(output.shape)} but must be (batch, out_channels, "
                                   f"*output_spatial) = {expected}")


def _harbor_no_input_mutation(subject: _Subject) -> None:
    harbor = subject.build()
    inputs = _harbor_inputs(subject)
    originals = list(inputs)
    copies = [t.clone() for t in inputs]
    with torch.no_grad():
        _call_harbor(harbor, inputs)
    if len(inputs) != len(originals) or any(a is not b for a, b in zip(inputs, originals)):
        raise subject.fail("no input mutation", "forward changed the list of inputs (added, removed or replaced items); "
                           "build a new list instead")
    for index, (tensor, copy_) in enumerate(zip(inputs, copies)):
        if not torch.equal(tensor, copy_):
            raise subject.fail("no input mutation", f"forward changed input {index} in place; compute new tensors instead")


def _harbor_no_hidden_state(subject: _Subject) -> None:
    harbor = subject.build().eval()
    with torch.no_grad():
        before = _call_harbor(harbor, _harbor_inputs(subject))
        _call_harbor(harbor, _harbor_inputs(subject, seed=SEED + 1))
        after = _call_harbor(harbor, _harbor_inputs(subject))
    if not torch.equal(before, after):
        raise subject.fail("no hidden state", "the same inputs give a different output after another call in eval mode; "
                           "harbor policies must not keep state between calls")


def _harbor_gradients(subject: _Subject) -> None:
    harbor = subject.build().train()
    inputs = [t.requires_grad_(True) for t in _harbor_inputs(subject)]
    output = _call_harbor(harbor, inputs)
    if not output.requires_grad:
        raise subject.fail("gradients", "the output does not depend on the inputs through autograd; do not detach it")
    _weighted_sum(output, torch.Generator().manual_seed(SEED + 1)).backward()
    _check_gradients(subject, harbor)
    dropped = [index for index, tensor in enumerate(inputs) if tensor.grad is None]
    if dropped:
        raise subject.fail("gradients", f"inputs {dropped} get no gradient, so the output does not depend on them; a "
                           f"harbor policy must combine every input")


def _harbor_batch_independence(subject: _Subject) -> None:
    inputs = _harbor_inputs(subject)

    def compare(harbor: nn.Module, dtype: torch.dtype) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
        converted = [t.to(dtype) for t in inputs]
        together = _call_harbor(harbor, converted)
        for index in range(BATCH_SIZE):
            alone = _call_harbor(harbor, [t[index : index + 1] for t in converted])
            yield f"the output of batch element {index}", together[index : index + 1], alone

    _check_batch_independence(subject, compare)


def _harbor_float64(subject: _Subject) -> None:
    harbor = subject.build().to(torch.float64).eval()
    with torch.no_grad():
        output = _call_harbor(harbor, [t.to(torch.float64) for t in _harbor_inputs(subject)])
    _check_placement(subject, "float64", "the output", output, torch.float64, None)


def _harbor_device(subject: _Subject) -> None:
    device = _device_for_check()
    harbor = subject.build().to(device).eval()
    with torch.no_grad():
        output = _call_harbor(harbor, [t.to(device) for t in _harbor_inputs(subject)])
    _check_placement(subject, "device", "the output", output, None, device)


def _harbor_determinism(subject: _Subject) -> None:
    first, second = subject.build(), subject.build()
    _check_state_dicts_equal(subject, "determinism", first, second)
    inputs = _harbor_inputs(subject)
    outputs = []
    for harbor in (first, second):
        torch.manual_seed(SEED + 2)
        with torch.no_grad():
            outputs.append(_call_harbor(harbor.train(), inputs))
    if not torch.equal(outputs[0], outputs[1]):
        raise subject.fail("determinism", "two runs after the same torch.manual_seed give different outputs; draw random "
                           "numbers from torch's global generator only")


def _harbor_state_dict_round_trip(subject: _Subject) -> None:
    trained = subject.build().train()
    inputs = _harbor_inputs(subject)
    with torch.no_grad():
        _call_harbor(trained, inputs)
    fresh = subject.build(seed=SEED + 3)
    try:
        fresh.load_state_dict(trained.state_dict())
    except Exception as exc:
        raise subject.fail("state_dict round trip", f"a fresh instance cannot load another's state_dict: "
                           f"{type(exc).__name__}: {exc}") from exc
    _compare_loaded(subject, trained, fresh, lambda module: [_call_harbor(module, inputs)])


# -- registration and graphs -----------------------------------------------------------


def registered_name(kind: str, cls: type) -> str:
    """Return the name a config uses for ``cls``: the registered name, or ``"dist:Name"`` when that is ambiguous.

    Raises:
        ConformanceError: ``cls`` is not registered as a component of ``kind``.
    """
    target = f"{cls.__module__}:{cls.__qualname__}"
    matches = [entry for entry in registry.entries(kind) if _entry_is(entry, cls, target)]
    if not matches:
        matches = [entry for entry in registry.entries(kind) if _loads_to(entry, cls)]
    if not matches:
        group = _group(kind)
        raise ConformanceError(
            f"{cls.__module__}.{cls.__qualname__}", "registered name",
            f"the class is not registered as a {KIND_LABELS[kind]}, so no config can name it. Register it with an "
            f"entry point in your pyproject.toml ([project.entry-points.\"{group}\"] {cls.__name__} = \"{target}\") "
            f"and reinstall the package, or in process with tnn_core.register({kind!r}, {cls.__name__!r}, "
            f"{cls.__name__})",
        )

    entry = matches[0]
    try:
        resolved = registry.resolve(kind, entry.name)
    except Exception:  # several distributions provide the name: fall back to the qualified form
        resolved = None
    if resolved is entry:
        return entry.name
    return entry.qualified_name


def _group(kind: str) -> str:
    from .registry import KINDS

    return KINDS[kind]


def _entry_is(entry: ComponentEntry, cls: type, target: str) -> bool:
    if entry.loaded:
        return entry.obj is cls
    return entry.entry_point is not None and entry.entry_point.value == target


def _loads_to(entry: ComponentEntry, cls: type) -> bool:
    try:
        return entry.load() is cls
    except Exception:  # a plugin that fails to import cannot be the class under test
        return False


def _projection(channels: int, vector: bool) -> dict[str, Any]:
    """Return the spec of a memory op that maps any input of the given kind to ``channels`` channels."""
    if vector:
        return {"name": f"{_BUILTIN}:FullyConnected", "out_channels": channels, "activation": None}
    return {"name": f"{_BUILTIN}:Conv2dCell", "out_channels": channels, "ksize": 1}


def _node(name: str, shape_from: str | None, **slots: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "name": name,
        "shape_from": shape_from,
        "harbor_policy": {"name": f"{_BUILTIN}:ResizeConcat"},
        "pre_memory": {"name": f"{_BUILTIN}:Identity"},
        "recurrent_cell": {"name": f"{_BUILTIN}:IdentityCell"},
        "post_memory": {"name": f"{_BUILTIN}:Identity"},
    }
    node.update(slots)
    return node


def _source(shape: Sequence[int], channels: int | None = None) -> tuple[list[int], dict[str, Any]]:
    """Return the stimulus shape and the input node ``source``, whose output has ``shape``'s form.

    A map shape ``(C, H, W)`` is the stimulus itself. A vector shape ``(C,)``
    comes from a ``(C, 2, 2)`` stimulus that the node averages and flattens.
    With ``channels`` the node projects its output to that many channels.
    """
    vector = len(shape) == 1
    stimulus = [int(shape[0]), 2, 2] if vector else [int(size) for size in shape]
    slots: dict[str, Any] = {}
    if vector:
        slots["pre_memory"] = {"name": f"{_BUILTIN}:AdaptiveAvgPool", "output_size": 1, "flatten": True}
    if channels is not None:
        slots["post_memory"] = _projection(channels, vector)
        slots["out_channels"] = channels
    return stimulus, _node("source", None, **slots)


def _graph_config(subject: _Subject) -> tuple[dict[str, Any], int]:
    """Return a small graph config that names the component under test, and its ``num_timesteps``."""
    name = registered_name(subject.kind, subject.cls)
    spec = {"name": name, **copy.deepcopy(subject.config_kwargs)}
    context = subject.context
    num_timesteps = context.get("num_timesteps") or DEFAULT_NUM_TIMESTEPS
    edges = [{"from": "source", "to": "subject"}]
    feedback_channels: int | None = None

    if subject.kind == "cell":
        input_shape = context["input_shape"]
        vector = len(input_shape) == 1
        stimulus, source = _source(input_shape, channels=context["res_channels"])
        node = _node("subject", "source", pre_memory=_projection(input_shape[0], vector), recurrent_cell=spec)
        feedback_channels = context["fb_channels"]
    elif subject.kind == "memory_op":
        input_shape = context["input_shape"]
        vector = len(input_shape) == 1
        stimulus, source = _source(input_shape)
        if "residual" in subject.forward_arguments:
            node = _node("subject", "source", post_memory=spec, residual=True)
        else:
            node = _node("subject", "source", pre_memory=spec)
    else:
        shapes = context["input_shapes"]
        vector = len(shapes[0]) == 1
        stimulus, source = _source(shapes[0])
        node = _node("subject", "source", harbor_policy=spec, pre_memory=_projection(4, vector))
        feedback_channels = shapes[1][0] if len(shapes) > 1 else None

    nodes = [source, node]
    output_node = "subject"
    if feedback_channels is not None:
        nodes.append(_node("sink", "subject", post_memory=_projection(feedback_channels, vector), out_channels=feedback_channels))
        edges += [{"from": "subject", "to": "sink"}, {"from": "sink", "to": "subject"}]
        output_node = "sink"

    config = {
        "input_shape": stimulus,
        "num_timesteps": num_timesteps,
        "input_nodes": ["source"],
        "output_node": output_node,
        "nodes": nodes,
        "edges": edges,
    }
    return config, num_timesteps


def _check_graph(subject: _Subject) -> None:
    from .temporal_graph import TemporalGraph

    config, num_timesteps = _graph_config(subject)
    try:
        graph = TemporalGraph(config)
    except Exception as exc:
        raise subject.fail("graph", f"a graph naming the component does not build: {type(exc).__name__}: {exc}\n"
                           f"config: {config!r}") from exc

    stimulus = torch.randn(2, *config["input_shape"], generator=torch.Generator().manual_seed(SEED))
    for mode, unroll in (("biological", graph.forward), ("full", graph.full_unroll)):
        try:
            output = unroll(stimulus, n_times=num_timesteps)
        except Exception as exc:
            raise subject.fail("graph", f"the {mode} unroll of a graph naming the component failed: "
                               f"{type(exc).__name__}: {exc}\nconfig: {config!r}") from exc
        if output.shape[0] != 2 or not torch.isfinite(output).all():
            raise subject.fail("graph", f"the {mode} unroll gave an output of shape {tuple(output.shape)} with "
                               f"non-finite values or the wrong batch size (expected 2)")


def iter_properties(kind: str) -> Iterator[str]:
    """Yield the property names the kit checks for ``kind`` (``"cell"``, ``"memory_op"`` or ``"harbor"``)."""
    table = {"cell": CELL_PROPERTIES, "memory_op": MEMORY_OP_PROPERTIES, "harbor": HARBOR_PROPERTIES}
    if kind not in table:
        raise ValueError(f"the conformance kit checks cells, memory ops and harbors, not {kind!r}; "
                         f"use 'cell', 'memory_op' or 'harbor'")
    yield from table[kind]
