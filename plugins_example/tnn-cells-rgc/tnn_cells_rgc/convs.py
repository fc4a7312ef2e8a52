"""Convolution paths of the reciprocal gated cell: plain and depth-separable
convolutions, each followed by (time-varying) batch norm and an activation,
plus the CReLU activation and the argument checks they share.

The submodule names (``conv``, ``depth_wise``, ``point_wise``,
``repeat_depth``, ``bn``, ``bns.<t>``) are those of PyTorchTNN's
``Conv2dOp`` and ``DSConv2dOp``, so PyTorchTNN state dicts load unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from tnn_core.layers import TimeVaryingNorm, init_bias, init_weight

__all__ = [
    "CReLU",
    "ConvOptions",
    "ConvOp",
    "DepthSeparableConvOp",
    "PADDING_MODES",
    "check_flag",
    "check_positive_int",
    "to_pair",
]

logger = logging.getLogger(__name__)

#: Values ``torch.nn.Conv2d`` accepts for ``padding_mode``.
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is a positive int, else raise ``ValueError`` naming ``name``."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_flag(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool, else raise ``ValueError`` naming ``name``."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def to_pair(name: str, value: Any, minimum: int = 1) -> tuple[int, int]:
    """Turn an int or a 2-sequence of ints, each at least ``minimum``, into ``(height, width)``."""
    if _is_int(value):
        pair = (value, value)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        pair = tuple(value)
    else:
        pair = None

    if pair is None or not all(_is_int(v) and v >= minimum for v in pair):
        kind = "positive integer" if minimum == 1 else f"integer of at least {minimum}"
        raise ValueError(f"{name} must be a {kind} or a pair of them (height, width), got {value!r}")
    return pair


def _select_channels(state: dict[str, torch.Tensor], key: str, dim: int, permutation: torch.Tensor) -> None:
    """Replace ``state[key]`` with ``state[key].index_select(dim, permutation)``.

    A missing key, or one whose size along ``dim`` is not ``len(permutation)``,
    is left unchanged so that the load which follows reports it.
    """
    tensor = state.get(key)
    if tensor is None or tensor.dim() <= dim or tensor.shape[dim] != permutation.numel():
        logger.debug("not permuting %s: missing or not %d channels along dim %d", key, permutation.numel(), dim)
        return
    state[key] = tensor.index_select(dim, permutation.to(tensor.device))


class CReLU(nn.Module):
    """Concatenated ReLU: ``cat([relu(x), relu(-x)])`` along channels, doubling them, as ``tf.nn.crelu`` does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.cat([x, -x], dim=1))


class ConvOptions:
    """The convolution, initialisation and normalisation settings that every path of the cell shares.

    Checks each value once, so each path's op is built from valid settings.
    """

    def __init__(
        self,
        stride: int | Sequence[int],
        padding: int | Sequence[int] | str,
        dilation: int | Sequence[int],
        groups: int,
        padding_mode: str,
        use_bias: bool,
        bias: float | None,
        init_dict: Mapping[str, Any] | None,
        dropout: float,
        batchnorm: bool | int | None,
        batchnorm_timevary: bool,
        num_timesteps: int | None,
        ds_repeat: bool,
    ) -> None:
        # The state is fed back in at the next step, so no path may change the spatial size.
        if to_pair("stride", stride) != (1, 1):
            raise ValueError(
                f"stride must be 1 because the cell's state keeps the input's spatial size, got {stride!r}"
            )
        self.stride = 1

        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"padding must be 'same', 'valid', a non-negative integer or a pair of them, got {padding!r}"
                )
            self.padding: str | tuple[int, int] = padding
        else:
            self.padding = to_pair("padding", padding, minimum=0)

        self.dilation = to_pair("dilation", dilation)
        self.groups = check_positive_int("groups", groups)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {', '.join(PADDING_MODES)}, got {padding_mode!r}")
        self.padding_mode = padding_mode

        self.use_bias = check_flag("use_bias", use_bias)
        if bias is not None and (isinstance(bias, bool) or not isinstance(bias, (int, float))):
            raise ValueError(f"bias must be a number (the value every conv bias starts at) or None, got {bias!r}")
        self.bias = bias
        if init_dict is not None and not isinstance(init_dict, Mapping):
            raise ValueError(f"init_dict must be a mapping such as {{'method': 'xavier_normal_'}}, got {init_dict!r}")
        # A private copy, so later changes to the caller's dict do not reach the cell.
        self.init_dict = dict(init_dict) if init_dict is not None else None

        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)

        if batchnorm is not None and not isinstance(batchnorm, bool) and not _is_int(batchnorm):
            raise ValueError(
                f"batchnorm must be true, false, None or a channel count (PyTorchTNN style), got {batchnorm!r}"
            )
        if _is_int(batchnorm) and not isinstance(batchnorm, bool) and batchnorm < 1:
            raise ValueError(f"batchnorm as a channel count must be positive, got {batchnorm!r}")
        self.batchnorm = batchnorm
        self.batchnorm_timevary = check_flag("batchnorm_timevary", batchnorm_timevary)
        if batchnorm_timevary and not self.uses_batchnorm:
            raise ValueError(
                "batchnorm_timevary is true but batchnorm is not set: set batchnorm to true "
                "(or to the channel count) to get one batch norm per time step"
            )
        if num_timesteps is not None:
            check_positive_int("num_timesteps", num_timesteps)
        self.num_timesteps = num_timesteps
        self.ds_repeat = check_flag("ds_repeat", ds_repeat)

    @property
    def uses_batchnorm(self) -> bool:
        return self.batchnorm is not None and self.batchnorm is not False

    def make_norm(self, channels: int, path: str) -> nn.Module:
        """Build the batch norm after a conv with ``channels`` outputs, or ``nn.Identity`` without batch norm."""
        if not self.uses_batchnorm:
            return nn.Identity()

        # PyTorchTNN gives every conv nn.BatchNorm2d(batchnorm), which works only where that
        # number equals the conv's output channels, so an int must match every path.
        if not isinstance(self.batchnorm, bool) and self.batchnorm != channels:
            raise ValueError(
                f"batchnorm={self.batchnorm} gives the number of batch-norm channels, but {path} outputs "
                f"{channels} channels: set batchnorm to true to size each batch norm by its conv"
            )
        return nn.BatchNorm2d(channels)

    def init_conv(self, conv: nn.Conv2d) -> None:
        """Initialise ``conv``'s weight from ``init_dict`` and fill its bias with ``bias``."""
        init_weight(conv.weight, self.init_dict)
        init_bias(conv.bias, self.bias)


class _NormActivationMixin(nn.Module):
    """Batch norm (one, or one per time step) followed by an activation."""

    def _build_norm(self, options: ConvOptions, channels: int, path: str) -> None:
        self.batchnorm_timevary = options.batchnorm_timevary
        if options.batchnorm_timevary:
            self.bns = TimeVaryingNorm(lambda: options.make_norm(channels, path), options.num_timesteps)
        else:
            self.bn = options.make_norm(channels, path)

    def _normalize(self, x: torch.Tensor, curr_timestep: int | None) -> torch.Tensor:
        if self.batchnorm_timevary:
            return self.bns(x, curr_timestep=curr_timestep)
        return self.bn(x)


class ConvOp(_NormActivationMixin):
    """Dropout, then a 2-D convolution, batch norm and an activation.

    ``(batch, in_channels, height, width) -> (batch, out_channels, height, width)``
    for the cell's stride 1 and ``"same"`` padding.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ksize: tuple[int, int],
        options: ConvOptions,
        path: str,
        activation: nn.Module | None = None,
        dropout: float | None = None,
        use_bias: bool | None = None,
    ) -> None:
        super().__init__()
        rate = options.dropout if dropout is None else dropout
        self.dropout = nn.Dropout(p=rate) if rate > 0 else nn.Identity()

        if in_channels % options.groups or out_channels % options.groups:
            raise ValueError(
                f"groups ({options.groups}) must divide the input channels ({in_channels}) and the output "
                f"channels ({out_channels}) of {path}"
            )
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size=ksize,
            stride=options.stride,
            padding=options.padding,
            dilation=options.dilation,
            groups=options.groups,
            bias=options.use_bias if use_bias is None else use_bias,
            padding_mode=options.padding_mode,
        )
        options.init_conv(self.conv)

        self._build_norm(options, out_channels, path)
        self.activation = activation if activation is not None else nn.Identity()

    def forward(
        self, x: torch.Tensor, curr_timestep: int | None = None, shift: torch.Tensor | float | None = None
    ) -> torch.Tensor:
        """Apply the op; ``shift`` is added after the batch norm, before the activation."""
        x = self._normalize(self.conv(self.dropout(x)), curr_timestep)
        if shift is not None:
            x = x + shift
        return self.activation(x)

    def permute_input_channels(self, state: dict[str, torch.Tensor], prefix: str, permutation: torch.Tensor) -> None:
        """Reorder the input channels of this op's tensors in ``state``, whose keys start with ``prefix``.

        New input channel ``c`` takes the weights of old channel
        ``permutation[c]``. Only ``conv.weight`` is indexed by input channels
        (the bias and batch norms are indexed by output channels). In a grouped
        conv each channel must stay in its group, else ``ValueError``. A
        missing weight, or one sized for another channel count, is left
        unchanged so that the load which follows reports it.
        """
        key = f"{prefix}conv.weight"
        weight = state.get(key)
        groups = self.conv.groups
        channels = permutation.numel()
        if weight is None or weight.dim() != 4 or weight.shape[1] * groups != channels or weight.shape[0] % groups:
            logger.debug("not permuting %s: missing or not sized for %d input channels", key, channels)
            return

        # A grouped conv's weight is (out, in / groups, kh, kw), and each output group reads only its own input group.
        per_group = channels // groups
        target_group = torch.arange(channels) // per_group
        if not torch.equal(permutation // per_group, target_group):
            raise ValueError(
                f"{key}: the new channel order moves input channels between the conv's {groups} groups, which a "
                f"grouped conv cannot represent. Only block orders that keep every channel in its group of "
                f"{per_group} can be mapped"
            )
        local = (permutation % per_group).view(groups, 1, per_group, 1, 1).to(weight.device)
        grouped = weight.reshape(groups, weight.shape[0] // groups, per_group, *weight.shape[2:])
        index = local.expand(-1, grouped.shape[1], -1, *grouped.shape[3:])
        state[key] = torch.gather(grouped, 2, index).reshape(weight.shape)


class DepthSeparableConvOp(_NormActivationMixin):
    """A depth-wise convolution, then a 1x1 point-wise one, batch norm and an activation.

    With ``options.ds_repeat`` an extra depth-wise convolution and an ELU come
    first (``repeat_depth``), before the dropout. This is the order of
    ``tf.nn.separable_conv2d`` in the TF convrnns cells and of PyTorchTNN's
    ``DSConv2dOp``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ksize: tuple[int, int],
        options: ConvOptions,
        path: str,
        activation: nn.Module | None = None,
        dropout: float | None = None,
        use_bias: bool | None = None,
    ) -> None:
        super().__init__()
        with_bias = options.use_bias if use_bias is None else use_bias

        self.repeat = options.ds_repeat
        if self.repeat:
            self.repeat_depth = nn.Conv2d(
                in_channels,
                in_channels,
                kernel_size=ksize,
                stride=1,
                padding="same",
                dilation=options.dilation,
                groups=in_channels,
                bias=with_bias,
                padding_mode=options.padding_mode,
            )
            self.inter_act = nn.ELU()

        rate = options.dropout if dropout is None else dropout
        self.dropout = nn.Dropout(p=rate) if rate > 0 else nn.Identity()

        self.depth_wise = nn.Conv2d(
            in_channels,
            in_channels,
            kernel_size=ksize,
            stride=options.stride,
            padding=options.padding,
            dilation=options.dilation,
            groups=in_channels,
            bias=with_bias,
            padding_mode=options.padding_mode,
        )
        # NOTE: PyTorchTNN keeps the point_wise bias even with use_bias=False. Here it goes,
        # so PyTorchTNN state dicts for that setting have one extra key.
        self.point_wise = nn.Conv2d(in_channels, out_channels, kernel_size=1, padding="valid", bias=with_bias)

        convs = [self.depth_wise, self.point_wise] + ([self.repeat_depth] if self.repeat else [])
        for conv in convs:
            options.init_conv(conv)

        self._build_norm(options, out_channels, path)
        self.activation = activation if activation is not None else nn.Identity()

    def forward(
        self, x: torch.Tensor, curr_timestep: int | None = None, shift: torch.Tensor | float | None = None
    ) -> torch.Tensor:
        """Apply the op; ``shift`` is added after the batch norm, before the activation."""
        if self.repeat:
            x = self.inter_act(self.repeat_depth(x))

        x = self.depth_wise(self.dropout(x))
        x = self._normalize(self.point_wise(x), curr_timestep)
        if shift is not None:
            x = x + shift
        return self.activation(x)

    def permute_input_channels(self, state: dict[str, torch.Tensor], prefix: str, permutation: torch.Tensor) -> None:
        """Reorder the input channels of this op's tensors in ``state``, whose keys start with ``prefix``.

        New input channel ``c`` takes the weights of old channel
        ``permutation[c]``. The depth-wise convs (``depth_wise`` and
        ``repeat_depth``) are indexed by input channel in their weight and
        bias, the point-wise conv in its weight's input dimension. The batch
        norms are indexed by output channels and stay. A missing tensor, or one
        sized for another channel count, is left unchanged so that the load
        which follows reports it.
        """
        names = ["depth_wise"] + (["repeat_depth"] if self.repeat else [])
        for name in names:
            _select_channels(state, f"{prefix}{name}.weight", 0, permutation)
            _select_channels(state, f"{prefix}{name}.bias", 0, permutation)
        _select_channels(state, f"{prefix}point_wise.weight", 1, permutation)
