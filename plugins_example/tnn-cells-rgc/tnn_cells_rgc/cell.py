"""The reciprocal gated cell (RGC) of the convrnns model family, as a pytorch-tnn cell."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from tnn_cells_rgc.convs import (
    ConvOp,
    ConvOptions,
    CReLU,
    DepthSeparableConvOp,
    check_flag,
    check_positive_int,
    to_pair,
)
from tnn_core.layers import make_activation

__all__ = ["ReciprocalGatedCell", "FEEDBACK_ENTRIES"]

logger = logging.getLogger(__name__)

#: Valid ``feedback_entry`` values: the feedback is added to the input, the cell's input or the output's input.
FEEDBACK_ENTRIES = ("input", "cell", "out")

# The conv that each option reading res_input builds. Without its conv (option off, or no cell) the
# option needs no res_input.
_RESIDUAL_PATHS = {
    "cell_residual": "res2cell_conv",
    "out_residual": "res2out_conv",
    "residual_to_out_gate": "out_gate_conv",
    "residual_to_cell_tau": "res2cell_tau_conv",
    "residual_to_cell_gate": "res2cell_gate_conv",
    "residual_to_out_tau": "res2out_tau_conv",
}


class ReciprocalGatedCell(nn.Module):
    r"""Reciprocal gated cell: a cell state and an output state that gate each other's inputs.

    Both states leakily integrate their inputs with learned, input-dependent
    time constants :math:`\tau`. The output gates the input to the cell and
    the cell gates the input to the output. With :math:`x_t` the cell input
    (the pre-memory output), :math:`r_t` the feedforward input before the
    pre-memory op (``res_input``), :math:`f_t` the feedback input
    (``fb_input``), :math:`c_t` the cell and :math:`h_t` the output:

    .. math::

        \tilde x_t &= \phi_{in}\left(x_t + [\text{entry}=\text{input}]\, F * f_t\right) \\
        u_t &= [\text{input\_to\_cell}]\, I_c * \tilde x_t
              + [\text{cell\_residual}]\, R_c * r_t
              + [\text{entry}=\text{cell}]\, F * f_t \\
        \tau^c_t &= \sigma_\tau\left(T_c * c_{t-1} + b_\tau
              + [\text{input\_to\_tau}]\, W * \tilde x_t
              + [\text{residual\_to\_cell\_tau}]\, W * r_t\right) \\
        g^c_t &= \sigma_g\left(G_c * h_{t-1} + b_g
              + [\text{input\_to\_gate}]\, W * \tilde x_t
              + [\text{residual\_to\_cell\_gate}]\, W * r_t\right) \\
        c_t &= \phi_c\left(\mathrm{LN}_c\left((o_\tau + k_\tau \tau^c_t) \odot c_{t-1}
              + (o_g + k_g g^c_t) \odot u_t\right)\right) \\
        v_t &= \left(I_h * \tilde x_t \text{ if input\_to\_out else } \tilde x_t\right)
              + [\text{cell\_to\_out}]\, (C_h * c_{t-1} + b_g)
              + [\text{out\_residual}]\, R_h * r_t
              + [\text{entry}=\text{out}]\, F * f_t \\
        \tau^h_t &= \sigma_\tau\left(T_h * h_{t-1} + b_\tau
              + [\text{input\_to\_tau}]\, W * \tilde x_t
              + [\text{residual\_to\_out\_tau}]\, W * r_t\right) \\
        g^h_t &= \sigma_g\left([\lnot\text{cell\_to\_out}]\, (C_h * c_{t-1} + b_g)
              + [\text{input\_to\_gate}]\, W * \tilde x_t
              + [\text{residual\_to\_out\_gate}]\, R_g * r_t\right) \\
        h_t &= \phi_h\left(\mathrm{LN}_h\left((o_\tau + k_\tau \tau^h_t) \odot h_{t-1}
              + (o_g + k_g g^h_t) \odot v_t\right)\right)

    where :math:`*` is a 2-D convolution followed by batch norm when
    ``batchnorm`` is set (each :math:`W` is a separate bias-free conv),
    :math:`[\cdot]` is 1 when the option is set and 0 otherwise,
    :math:`\sigma_\tau, \sigma_g` are ``tau_nonlinearity`` and
    ``gate_nonlinearity``, :math:`o, k` the offsets and multipliers,
    :math:`b_\tau, b_g` ``tau_bias`` and ``gate_bias``, :math:`\phi` the
    activations, and :math:`F * f_t` includes ``feedback_activation``. The
    state at :math:`t = -1` is zero. ``gate_filter_size=0`` drops the cell,
    leaving the output alone (:math:`g^h_t` then has no cell term).

    With ``cell_activation="CReLU"`` the cell :math:`c_t` has
    ``2 * cell_depth`` channels, as ``tf.nn.crelu`` makes it, and :math:`T_c`
    and :math:`C_h` read all of them. The decay term then multiplies the
    ``cell_depth``-channel value :math:`\mathrm{relu}(a) - \mathrm{relu}(-a)`
    that the CReLU output encodes, which is the normalized pre-activation
    :math:`a` of the previous step.

    The cell comes from Nayebi et al. 2018, "Task-driven convolutional
    recurrent models of the visual system" (NeurIPS), and Nayebi et al. 2022,
    "Recurrent connections in the primate ventral visual stream mediate a
    trade-off between task performance and network size" (Neural
    Computation). With default options it computes exactly what PyTorchTNN's
    ``ReciprocalGatedCell`` computes. The layer norms normalize over channels
    separately at every pixel, as PyTorchTNN does.

    Args:
        input_in_channels: channels of ``inputs`` (the pre-memory output),
            provided by the graph.
        out_channels: channels of the output :math:`h_t`. Must equal
            ``input_in_channels`` unless ``input_to_out``.
        cell_depth: channels of the cell :math:`c_t`.
        res_channels: channels of ``res_input``, provided by the graph.
        fb_channels: channels of ``fb_input``, provided by the graph; ``None``
            when the node has no feedback input. Default: ``None``.
        stride: must be 1, because the state keeps the input's size. Default: ``1``.
        padding: padding of the convolutions, ``"same"``, ``"valid"``, an int or
            a pair; it must keep the spatial size. Default: ``"same"``.
        dilation, groups, padding_mode: as in ``torch.nn.Conv2d``, for every
            plain convolution (depth-separable ones set their own groups).
        use_bias: whether the convolutions have biases (the extra convs of
            the median options never do). Default: ``True``.
        bias: value every conv bias starts at, or ``None`` for PyTorch's
            default initialisation. Default: ``None``.
        init_dict: ``{"method": <torch.nn.init function name>, **kwargs}`` applied
            to every conv weight; the dict is not modified. Default: ``None``.
        dropout: dropout probability before each convolution (except
            ``inp2out_conv``). Default: ``0.0``.
        batchnorm: ``True`` (or PyTorchTNN's channel count, which must then
            match every conv's output) for a batch norm after every conv.
            Default: ``None``.
        batchnorm_timevary: one batch norm per time step, selected by
            ``curr_timestep``; needs ``num_timesteps``. Default: ``False``.
        num_timesteps: time steps the graph unrolls, provided by the graph or
            set in the config. Default: ``None``.
        layernorm: per-pixel layer norm over channels before the cell and
            output activations (``ln_cell``, ``ln_out``). Default: ``False``.
        state_shape: if set, ``(height, width)`` that the inputs must have;
            the zero state takes the input's size either way. Default: ``None``.
        tau_filter_size, gate_filter_size, ff_filter_size, in_out_filter_size,
        cell_tau_filter_size, feedback_filter_size: kernel sizes of
            :math:`T_h`, the gate convs (:math:`G_c, C_h, R_g`), the cell
            input convs (:math:`I_c, R_c`), :math:`I_h`, :math:`T_c`
            (``None``: ``tau_filter_size``) and :math:`F`. An int or a pair.
            Defaults: ``(3, 3)``; ``gate_filter_size=0`` drops the cell.
        feedback_entry: where :math:`F * f_t` is added: ``"input"``,
            ``"cell"`` or ``"out"``. Default: ``"out"``.
        feedback_depth_separable, ff_depth_separable, in_out_depth_separable,
        gate_depth_separable, tau_depth_separable: use a depth-wise then 1x1
            convolution on that path. Default: ``False``.
        ds_repeat: put an extra depth-wise conv and ELU in front of every
            depth-separable conv. Default: ``False``.
        tau_nonlinearity, gate_nonlinearity: ``torch.nn`` class names of
            :math:`\sigma_\tau, \sigma_g`. Default: ``"Sigmoid"``.
        tau_bias, gate_bias: :math:`b_\tau, b_g`. Default: ``0.0``.
        tau_multiplier, gate_multiplier: :math:`k_\tau, k_g`. Default: ``-1.0``.
        tau_offset, gate_offset: :math:`o_\tau, o_g`. Default: ``1.0``.
        input_activation, feedback_activation, cell_activation, out_activation:
            ``torch.nn`` class names (or ``None``) of :math:`\phi_{in}`, the
            feedback activation, :math:`\phi_c` (also ``"CReLU"``) and
            :math:`\phi_h`. Defaults: ``"Identity"``, ``"Identity"``,
            ``"ELU"``, ``"ELU"``.
        *_kwargs: keyword arguments of the activation class of the same name.
        cell_residual, input_to_cell: feed :math:`r_t` / :math:`\tilde x_t`
            into the cell. At least one must be set. Defaults: ``False``, ``True``.
        out_residual: add :math:`R_h * r_t` (a 1x1 conv) to the output's input.
            Default: ``False``.
        input_to_out: pass :math:`\tilde x_t` through :math:`I_h` instead of
            using it as is. Default: ``False``.
        cell_to_out: add :math:`C_h * c_{t-1}` to the output's input instead
            of using it as the output gate. Default: ``False``.
        residual_to_out_gate: add :math:`R_g * r_t` to the output gate. Default: ``True``.
        input_to_tau, input_to_gate, residual_to_cell_tau, residual_to_cell_gate,
        residual_to_out_tau: add a bias-free conv of :math:`\tilde x_t` or
            :math:`r_t` to the named pre-activations, as in the equations.
            Default: ``False``.

    Shapes:
        ``inputs``: ``(batch, input_in_channels, height, width)``;
        ``res_input``: ``(batch, res_channels, height, width)``;
        ``fb_input``: ``(batch, fb_channels, height, width)``;
        output: ``(batch, out_channels, height, width)``;
        state: ``(batch, C + out_channels, height, width)``, the cell then the
        output along channels, with ``C`` the cell's channels (``cell_depth``,
        twice that with CReLU, 0 without a cell).
    """

    def __init__(
        self,
        input_in_channels: int,
        out_channels: int,
        cell_depth: int,
        res_channels: int,
        fb_channels: int | None = None,
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = "same",
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        use_bias: bool = True,
        bias: float | None = None,
        padding_mode: str = "zeros",
        init_dict: Mapping[str, Any] | None = None,
        dropout: float = 0.0,
        batchnorm: bool | int | None = None,
        batchnorm_timevary: bool = False,
        num_timesteps: int | None = None,
        layernorm: bool = False,
        state_shape: Sequence[int] | None = None,
        tau_filter_size: int | Sequence[int] = (3, 3),
        gate_filter_size: int | Sequence[int] = (3, 3),
        ff_filter_size: int | Sequence[int] = (3, 3),
        in_out_filter_size: int | Sequence[int] = (3, 3),
        cell_tau_filter_size: int | Sequence[int] | None = None,
        feedback_filter_size: int | Sequence[int] = (3, 3),
        feedback_entry: str = "out",
        feedback_depth_separable: bool = False,
        ff_depth_separable: bool = False,
        in_out_depth_separable: bool = False,
        gate_depth_separable: bool = False,
        tau_depth_separable: bool = False,
        tau_nonlinearity: str | None = "Sigmoid",
        tau_nonlinearity_kwargs: Mapping[str, Any] | None = None,
        gate_nonlinearity: str | None = "Sigmoid",
        gate_nonlinearity_kwargs: Mapping[str, Any] | None = None,
        tau_bias: float = 0.0,
        gate_bias: float = 0.0,
        tau_multiplier: float = -1.0,
        gate_multiplier: float = -1.0,
        tau_offset: float = 1.0,
        gate_offset: float = 1.0,
        input_activation: str | None = "Identity",
        input_activation_kwargs: Mapping[str, Any] | None = None,
        feedback_activation: str | None = "Identity",
        feedback_activation_kwargs: Mapping[str, Any] | None = None,
        cell_activation: str | None = "ELU",
        cell_activation_kwargs: Mapping[str, Any] | None = None,
        out_activation: str | None = "ELU",
        out_activation_kwargs: Mapping[str, Any] | None = None,
        cell_residual: bool = False,
        out_residual: bool = False,
        residual_to_cell_tau: bool = False,
        residual_to_cell_gate: bool = False,
        residual_to_out_tau: bool = False,
        residual_to_out_gate: bool = True,
        input_to_tau: bool = False,
        input_to_gate: bool = False,
        input_to_cell: bool = True,
        input_to_out: bool = False,
        cell_to_out: bool = False,
        ds_repeat: bool = False,
    ) -> None:
        super().__init__()

        # Channel counts and routing flags.
        self.input_in_channels = check_positive_int("input_in_channels", input_in_channels)
        self.out_depth = check_positive_int("out_channels", out_channels)
        self.out_channels = self.out_depth
        self.cell_depth = check_positive_int("cell_depth", cell_depth)
        self.res_channels = check_positive_int("res_channels", res_channels)
        self.fb_channels = None if fb_channels is None else check_positive_int("fb_channels", fb_channels)

        flags = {
            "layernorm": layernorm,
            "feedback_depth_separable": feedback_depth_separable,
            "ff_depth_separable": ff_depth_separable,
            "in_out_depth_separable": in_out_depth_separable,
            "gate_depth_separable": gate_depth_separable,
            "tau_depth_separable": tau_depth_separable,
            "cell_residual": cell_residual,
            "out_residual": out_residual,
            "residual_to_cell_tau": residual_to_cell_tau,
            "residual_to_cell_gate": residual_to_cell_gate,
            "residual_to_out_tau": residual_to_out_tau,
            "residual_to_out_gate": residual_to_out_gate,
            "input_to_tau": input_to_tau,
            "input_to_gate": input_to_gate,
            "input_to_cell": input_to_cell,
            "input_to_out": input_to_out,
            "cell_to_out": cell_to_out,
        }
        for name, value in flags.items():
            setattr(self, name, check_flag(name, value))

        if feedback_entry not in FEEDBACK_ENTRIES:
            raise ValueError(
                f"invalid feedback_entry {feedback_entry!r}; valid choices: {', '.join(map(repr, FEEDBACK_ENTRIES))}"
            )
        self.feedback_entry = feedback_entry

        # Kernel sizes; a gate kernel of 0 x 0 means "no cell", as in the TF cell.
        self.tau_filter_size = to_pair("tau_filter_size", tau_filter_size)
        self.gate_filter_size = to_pair("gate_filter_size", gate_filter_size, minimum=0)
        self.ff_filter_size = to_pair("ff_filter_size", ff_filter_size)
        self.in_out_filter_size = to_pair("in_out_filter_size", in_out_filter_size)
        self.cell_tau_filter_size = (
            self.tau_filter_size
            if cell_tau_filter_size is None
            else to_pair("cell_tau_filter_size", cell_tau_filter_size)
        )
        self.feedback_filter_size = to_pair("feedback_filter_size", feedback_filter_size)
        self.use_cell = self.gate_filter_size != (0, 0)
        if self.use_cell and 0 in self.gate_filter_size:
            raise ValueError(
                f"gate_filter_size must be positive, or 0 (0 x 0) to drop the cell, got {gate_filter_size!r}"
            )

        # Offsets, multipliers and the median cell's constant biases.
        scalars = {
            "tau_bias": tau_bias,
            "gate_bias": gate_bias,
            "tau_multiplier": tau_multiplier,
            "gate_multiplier": gate_multiplier,
            "tau_offset": tau_offset,
            "gate_offset": gate_offset,
        }
        for name, value in scalars.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, got {value!r}")
        self._tau_bias = float(tau_bias)
        self._gate_bias = float(gate_bias)
        self._tau_k = float(tau_multiplier)
        self._gate_k = float(gate_multiplier)
        self._tau_offset = float(tau_offset)
        self._gate_offset = float(gate_offset)

        self.state_shape = None if state_shape is None else to_pair("state_shape", state_shape)
        self._check_routing()

        # Activations. CReLU doubles the cell's channels, so only the cell may use it.
        self._input_activation = make_activation(input_activation, input_activation_kwargs)
        if cell_activation == "CReLU":
            if cell_activation_kwargs:
                raise ValueError(f"CReLU takes no cell_activation_kwargs, got {cell_activation_kwargs!r}")
            self._cell_activation: nn.Module = CReLU()
            self.cell_depth_out = 2 * self.cell_depth
            logger.debug("CReLU cell activation: the cell state has %d channels", self.cell_depth_out)
        else:
            self._cell_activation = make_activation(cell_activation, cell_activation_kwargs)
            self.cell_depth_out = self.cell_depth
        self._gate_nonlinearity = make_activation(gate_nonlinearity, gate_nonlinearity_kwargs)
        self._tau_nonlinearity = make_activation(tau_nonlinearity, tau_nonlinearity_kwargs)
        self._out_activation = make_activation(out_activation, out_activation_kwargs)

        options = ConvOptions(
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            padding_mode=padding_mode,
            use_bias=use_bias,
            bias=bias,
            init_dict=init_dict,
            dropout=dropout,
            batchnorm=batchnorm,
            batchnorm_timevary=batchnorm_timevary,
            num_timesteps=num_timesteps,
            ds_repeat=ds_repeat,
        )
        self.num_timesteps = num_timesteps

        def make_op(
            name: str,
            in_dim: int,
            out_dim: int,
            ksize: tuple[int, int],
            depth_separable: bool = False,
            activation: nn.Module | None = None,
            **overrides: Any,
        ) -> ConvOp | DepthSeparableConvOp:
            op_class = DepthSeparableConvOp if depth_separable else ConvOp
            op = op_class(in_dim, out_dim, ksize, options, path=name, activation=activation, **overrides)
            setattr(self, name, op)
            return op

        # The paths PyTorchTNN builds, in its order and with its names.
        if self.fb_channels is not None:
            # TF sizes the feedback conv for where it enters; PyTorchTNN always uses input_in_channels.
            fb_out = {"input": self.input_in_channels, "cell": self.cell_depth, "out": self.out_depth}
            make_op(
                "feedback_conv",
                self.fb_channels,
                fb_out[feedback_entry],
                self.feedback_filter_size,
                feedback_depth_separable,
                activation=make_activation(feedback_activation, feedback_activation_kwargs),
            )
        else:
            # Built anyway so that an invalid name fails now, not when feedback first arrives.
            make_activation(feedback_activation, feedback_activation_kwargs)

        if input_to_out:
            make_op(
                "inp2out_conv",
                self.input_in_channels,
                self.out_depth,
                self.in_out_filter_size,
                in_out_depth_separable,
                dropout=0.0,
            )
        make_op("out_tau_conv", self.out_depth, self.out_depth, self.tau_filter_size, tau_depth_separable)
        if residual_to_out_gate:
            make_op("out_gate_conv", self.res_channels, self.out_depth, self.gate_filter_size, gate_depth_separable)

        if self.use_cell:
            if cell_residual:
                make_op("res2cell_conv", self.res_channels, self.cell_depth, self.ff_filter_size, ff_depth_separable)
            if input_to_cell:
                make_op(
                    "inp2cell_conv", self.input_in_channels, self.cell_depth, self.ff_filter_size, ff_depth_separable
                )
            make_op(
                "cell_tau_conv",
                self.cell_depth_out,
                self.cell_depth,
                self.cell_tau_filter_size,
                tau_depth_separable,
                activation=make_activation(tau_nonlinearity, tau_nonlinearity_kwargs),
            )
            make_op(
                "cell_gate_conv",
                self.out_depth,
                self.cell_depth,
                self.gate_filter_size,
                gate_depth_separable,
                activation=make_activation(gate_nonlinearity, gate_nonlinearity_kwargs),
            )
            make_op("cell2out_conv", self.cell_depth_out, self.out_depth, self.gate_filter_size, gate_depth_separable)

        if out_residual:
            make_op("res2out_conv", self.res_channels, self.out_depth, (1, 1))

        if layernorm:
            if self.use_cell:
                self.ln_cell = nn.LayerNorm(self.cell_depth)
            self.ln_out = nn.LayerNorm(self.out_depth)

        # The TF median cell's extra paths: plain bias-free convs into the tau and gate pre-activations.
        if self.use_cell and input_to_tau:
            make_op(
                "inp2cell_tau_conv", self.input_in_channels, self.cell_depth, self.cell_tau_filter_size, use_bias=False
            )
        if self.use_cell and residual_to_cell_tau:
            make_op("res2cell_tau_conv", self.res_channels, self.cell_depth, self.cell_tau_filter_size, use_bias=False)
        if self.use_cell and input_to_gate:
            make_op("inp2cell_gate_conv", self.input_in_channels, self.cell_depth, self.gate_filter_size, use_bias=False)
        if self.use_cell and residual_to_cell_gate:
            make_op("res2cell_gate_conv", self.res_channels, self.cell_depth, self.gate_filter_size, use_bias=False)
        if input_to_tau:
            make_op("inp2out_tau_conv", self.input_in_channels, self.out_depth, self.tau_filter_size, use_bias=False)
        if residual_to_out_tau:
            make_op("res2out_tau_conv", self.res_channels, self.out_depth, self.tau_filter_size, use_bias=False)
        if input_to_gate:
            make_op("inp2out_gate_conv", self.input_in_channels, self.out_depth, self.gate_filter_size, use_bias=False)

    def _check_routing(self) -> None:
        """Raise ``ValueError`` for option combinations the cell cannot compute or would ignore."""
        if not self.input_to_out and self.input_in_channels != self.out_depth:
            raise ValueError(
                f"input_in_channels ({self.input_in_channels}) differs from out_channels ({self.out_depth}), but "
                f"without input_to_out the input is added to the output as is: set input_to_out to true, "
                f"or set out_channels to {self.input_in_channels}"
            )

        if self.use_cell:
            if not (self.cell_residual or self.input_to_cell):
                raise ValueError(
                    "the cell has no input: set cell_residual or input_to_cell (or both) to true, "
                    "or set gate_filter_size to 0 to drop the cell"
                )
            return

        # Without a cell: reject what would need it, or the zero-size gate kernel.
        needs_cell = {
            "cell_residual": self.cell_residual,
            "cell_to_out": self.cell_to_out,
            "residual_to_cell_tau": self.residual_to_cell_tau,
            "residual_to_cell_gate": self.residual_to_cell_gate,
            "gate_bias": self._gate_bias != 0.0,
            "feedback_entry='cell'": self.feedback_entry == "cell" and self.fb_channels is not None,
        }
        needs_gate_kernel = {
            "residual_to_out_gate": self.residual_to_out_gate,
            "input_to_gate": self.input_to_gate,
        }
        wrong = [name for name, is_set in needs_cell.items() if is_set]
        if wrong:
            raise ValueError(
                f"gate_filter_size 0 drops the cell, so {', '.join(wrong)} would have no effect: "
                f"reset them to their defaults or give gate_filter_size a positive size"
            )
        wrong = [name for name, is_set in needs_gate_kernel.items() if is_set]
        if wrong:
            raise ValueError(
                f"gate_filter_size 0 drops the cell, but {', '.join(wrong)} need a gate convolution of that "
                f"size: set them to false or give gate_filter_size a positive size"
            )

    @property
    def state_channels(self) -> int:
        """Channels of the state: the cell (if any) then the output."""
        return (self.cell_depth_out if self.use_cell else 0) + self.out_depth

    def zero_state(self, inputs: torch.Tensor) -> torch.Tensor:
        """Return the all-zero state for a batch of ``inputs``, on its device and in its dtype."""
        batch, _, height, width = inputs.shape
        return inputs.new_zeros(batch, self.state_channels, height, width)

    def reorder_feedback_channels(
        self, state: dict[str, torch.Tensor], prefix: str, block_sizes: Sequence[int], order: Sequence[int]
    ) -> None:
        """Permute, in place in ``state``, this cell's tensors that are indexed by feedback-input channels.

        ``fb_input`` concatenates blocks along channels. The tensors in
        ``state`` were trained on old blocks of ``block_sizes[i]`` channels
        each, in their old order. In the new order, block ``k`` carries what
        old block ``order[k]`` carried, so new channel ``c`` takes the weights
        of old channel ``permutation[c]``, where ``permutation`` concatenates
        old blocks ``order[0]``, ``order[1]``, and so on. The tensors then give
        on the new input what they gave on the old one. ``tnn_core.compat``
        calls this when a PyTorchTNN checkpoint lists feedback inputs in
        another order than the graph.

        ``prefix`` is this cell's key prefix in ``state``, e.g.
        ``"nodes.V4.recurrent_cell."``. Only ``feedback_conv`` reads
        ``fb_input``. A plain conv has its weight's input dimension permuted.
        A depth-separable one has the weight and bias of ``depth_wise`` and
        ``repeat_depth`` and the input dimension of ``point_wise`` permuted.
        Every batch norm of the path, time-varying ones included, comes after
        a conv and is indexed by output channels, so it stays. A missing
        tensor, or one sized for another channel count, is left unchanged so
        that the load which follows reports it.

        Raises:
            ValueError: the cell has no feedback input, ``block_sizes`` are
                not positive or do not add up to ``fb_channels``, ``order`` is
                not a permutation of ``range(len(block_sizes))``, or a grouped
                feedback conv would need channels to move between its groups.
        """
        if self.fb_channels is None:
            raise ValueError("the cell was built with fb_channels=None, so it has no feedback weights to reorder")

        sizes = list(block_sizes)
        if not all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in sizes):
            raise ValueError(f"block_sizes must be positive integers, got {sizes!r}")
        if sum(sizes) != self.fb_channels:
            raise ValueError(
                f"block_sizes {sizes!r} add up to {sum(sizes)} channels but the cell has fb_channels={self.fb_channels}"
            )
        indices = list(order)
        all_ints = all(isinstance(i, int) and not isinstance(i, bool) for i in indices)
        if not all_ints or sorted(indices) != list(range(len(sizes))):
            raise ValueError(
                f"order must list each block index 0..{len(sizes) - 1} exactly once, got {indices!r}"
            )

        starts = [sum(sizes[:index]) for index in range(len(sizes))]
        permutation = torch.cat([torch.arange(starts[index], starts[index] + sizes[index]) for index in indices])
        self.feedback_conv.permute_input_channels(state, f"{prefix}feedback_conv.", permutation)

    def _check_call(
        self,
        inputs: torch.Tensor,
        state: torch.Tensor | None,
        fb_input: torch.Tensor | None,
        res_input: torch.Tensor | None,
    ) -> None:
        if inputs.dim() != 4 or inputs.shape[1] != self.input_in_channels:
            raise ValueError(
                f"inputs must have shape (batch, {self.input_in_channels}, height, width), got {tuple(inputs.shape)}"
            )
        if state is None and self.state_shape is not None and tuple(inputs.shape[2:]) != self.state_shape:
            raise ValueError(
                f"inputs have spatial size {tuple(inputs.shape[2:])} but state_shape is {self.state_shape}: "
                f"set state_shape to the input size or remove it"
            )
        if state is not None and (state.dim() != 4 or state.shape[1] != self.state_channels):
            raise ValueError(
                f"state must have shape (batch, {self.state_channels}, height, width) (the cell then the "
                f"output along channels), got {tuple(state.shape)}"
            )

        if fb_input is not None and self.fb_channels is None:
            raise ValueError(
                "fb_input was given but the cell was built with fb_channels=None: set fb_channels to its channels"
            )

        needs_residual = [name for name, path in _RESIDUAL_PATHS.items() if hasattr(self, path)]
        if res_input is None and needs_residual:
            raise ValueError(f"res_input is required because {', '.join(needs_residual)} is set")

    def _previous_cell_value(self, prev_cell: torch.Tensor) -> torch.Tensor:
        """Return the ``cell_depth``-channel cell that the decay term multiplies.

        With CReLU the state contains ``[relu(a), relu(-a)]``, whose difference is ``a``.
        """
        if isinstance(self._cell_activation, CReLU):
            positive, negative = torch.split(prev_cell, self.cell_depth, dim=1)
            return positive - negative
        return prev_cell

    def forward(
        self,
        inputs: torch.Tensor,
        state: torch.Tensor | None = None,
        fb_input: torch.Tensor | None = None,
        res_input: torch.Tensor | None = None,
        curr_timestep: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run one step and return ``(output, state)``, the state being ``[cell, output]`` along channels."""
        self._check_call(inputs, state, fb_input, res_input)
        if state is None:
            state = self.zero_state(inputs)
        t = curr_timestep

        if self.use_cell:
            prev_cell, prev_out = torch.split(state, [self.cell_depth_out, self.out_depth], dim=1)
        else:
            prev_cell, prev_out = None, state

        use_feedback = fb_input is not None
        if use_feedback and self.feedback_entry == "input":
            inputs = inputs + self.feedback_conv(fb_input, curr_timestep=t)
        inputs = self._input_activation(inputs)

        if self.use_cell:
            next_cell = self._next_cell(inputs, prev_cell, prev_out, fb_input, res_input, t)

        # The output's input.
        out_input = self.inp2out_conv(inputs, curr_timestep=t) if self.input_to_out else inputs
        if self.use_cell and self.cell_to_out:
            out_input = out_input + self._shifted(self.cell2out_conv(prev_cell, curr_timestep=t), self._gate_bias)
        if res_input is not None and self.out_residual:
            out_input = out_input + self.res2out_conv(res_input, curr_timestep=t)
        if use_feedback and self.feedback_entry == "out":
            out_input = out_input + self.feedback_conv(fb_input, curr_timestep=t)

        # The output's time constant and gate.
        out_tau = self._shifted(self.out_tau_conv(prev_out, curr_timestep=t), self._tau_bias)
        if self.input_to_tau:
            out_tau = out_tau + self.inp2out_tau_conv(inputs, curr_timestep=t)
        if self.residual_to_out_tau:
            out_tau = out_tau + self.res2out_tau_conv(res_input, curr_timestep=t)

        if self.use_cell and not self.cell_to_out:
            out_gate = self._shifted(self.cell2out_conv(prev_cell, curr_timestep=t), self._gate_bias)
        else:
            out_gate = torch.zeros_like(out_input)
        if self.input_to_gate:
            out_gate = out_gate + self.inp2out_gate_conv(inputs, curr_timestep=t)
        if res_input is not None and self.residual_to_out_gate:
            out_gate = out_gate + self.out_gate_conv(res_input, curr_timestep=t)

        out_tau = self._tau_nonlinearity(out_tau)
        out_gate = self._gate_nonlinearity(out_gate)

        # The output's update.
        next_out = (self._tau_offset + self._tau_k * out_tau) * prev_out + (
            self._gate_offset + self._gate_k * out_gate
        ) * out_input
        if self.layernorm:
            next_out = self.ln_out(next_out.movedim(1, -1)).movedim(-1, 1)
        next_out = self._out_activation(next_out)

        next_state = torch.cat([next_cell, next_out], dim=1) if self.use_cell else next_out
        return next_out, next_state

    @staticmethod
    def _shifted(x: torch.Tensor, value: float) -> torch.Tensor:
        """Add the constant ``value``, skipping 0 so that default options keep the reference's numerics."""
        return x + value if value != 0.0 else x

    def _next_cell(
        self,
        inputs: torch.Tensor,
        prev_cell: torch.Tensor,
        prev_out: torch.Tensor,
        fb_input: torch.Tensor | None,
        res_input: torch.Tensor | None,
        t: int | None,
    ) -> torch.Tensor:
        """Compute the cell's update (its activation included) from the activated input."""
        # The cell's input.
        cell_terms = []
        if res_input is not None and self.cell_residual:
            cell_terms.append(self.res2cell_conv(res_input, curr_timestep=t))
        if self.input_to_cell:
            cell_terms.append(self.inp2cell_conv(inputs, curr_timestep=t))
        if fb_input is not None and self.feedback_entry == "cell":
            cell_terms.append(self.feedback_conv(fb_input, curr_timestep=t))
        cell_input = cell_terms[0]
        for term in cell_terms[1:]:
            cell_input = cell_input + term

        # The time constant and the gate; their nonlinearities sit inside the convs'
        # ops, so the extra terms go in as a shift before the activation.
        tau_shift = self._pre_activation_shift(
            self._tau_bias,
            ("inp2cell_tau_conv", inputs) if self.input_to_tau else None,
            ("res2cell_tau_conv", res_input) if self.residual_to_cell_tau else None,
            t=t,
        )
        gate_shift = self._pre_activation_shift(
            self._gate_bias,
            ("inp2cell_gate_conv", inputs) if self.input_to_gate else None,
            ("res2cell_gate_conv", res_input) if self.residual_to_cell_gate else None,
            t=t,
        )
        cell_tau = self.cell_tau_conv(prev_cell, curr_timestep=t, shift=tau_shift)
        cell_gate = self.cell_gate_conv(prev_out, curr_timestep=t, shift=gate_shift)

        # The update.
        next_cell = (self._tau_offset + self._tau_k * cell_tau) * self._previous_cell_value(prev_cell) + (
            self._gate_offset + self._gate_k * cell_gate
        ) * cell_input
        if self.layernorm:
            next_cell = self.ln_cell(next_cell.movedim(1, -1)).movedim(-1, 1)
        return self._cell_activation(next_cell)

    def _pre_activation_shift(
        self,
        constant: float,
        *conv_terms: tuple[str, torch.Tensor] | None,
        t: int | None,
    ) -> torch.Tensor | float | None:
        """Sum ``constant`` and each ``(conv name, input)`` term's conv output; ``None`` when all are absent."""
        shift: torch.Tensor | float | None = constant if constant != 0.0 else None
        for term in conv_terms:
            if term is None:
                continue
            name, x = term
            value = getattr(self, name)(x, curr_timestep=t)
            shift = value if shift is None else value + shift
        return shift

