"""Unit tests of ReciprocalGatedCell.reorder_feedback_channels, which maps feedback weights to a new input order."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tnn_cells_rgc import ReciprocalGatedCell

BATCH, HEIGHT, WIDTH, STEPS = 2, 5, 5, 3
PREFIX = "nodes.V4.recurrent_cell."

# Old blocks have 1, 2 and 1 channels. The new input carries old block 2, then 0, then 1.
BLOCK_SIZES = [1, 2, 1]
ORDER = [2, 0, 1]
PERMUTATION = [3, 0, 1, 2]

CONFIGURATIONS = {
    "plain": {},
    "plain_entry_cell": {"feedback_entry": "cell"},
    "depth_separable": {"feedback_depth_separable": True},
    "depth_separable_repeat_timevary": {
        "feedback_depth_separable": True,
        "ds_repeat": True,
        "batchnorm": True,
        "batchnorm_timevary": True,
        "num_timesteps": STEPS,
        "feedback_entry": "input",
    },
}

# A grouped conv reads each input channel from one group, so its case only swaps channels 0 and 1 (group 0).
GROUPED = {"groups": 2, "batchnorm": True}
GROUPED_BLOCK_SIZES = [1, 1, 2]
GROUPED_ORDER = [1, 0, 2]
GROUPED_PERMUTATION = [1, 0, 2, 3]

CASES = [(overrides, BLOCK_SIZES, ORDER, PERMUTATION) for overrides in CONFIGURATIONS.values()]
CASES.append((GROUPED, GROUPED_BLOCK_SIZES, GROUPED_ORDER, GROUPED_PERMUTATION))
CASE_IDS = [*CONFIGURATIONS, "grouped"]


def make_cell(**overrides: Any) -> ReciprocalGatedCell:
    kwargs: dict[str, Any] = dict(
        input_in_channels=6, out_channels=6, cell_depth=4, res_channels=4, fb_channels=sum(BLOCK_SIZES)
    )
    kwargs.update(overrides)
    return ReciprocalGatedCell(**kwargs)


def randomize(cell: ReciprocalGatedCell, seed: int) -> None:
    """Give every parameter and batch-norm statistic a random value, so that no channel looks like another."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in cell.state_dict().items():
            if not tensor.is_floating_point():
                continue
            values = torch.randn(tensor.shape, generator=generator) * 0.3
            if name.endswith("running_var"):
                values = values.abs() + 0.5
            tensor.copy_(values)


def prefixed_state(cell: ReciprocalGatedCell) -> dict[str, torch.Tensor]:
    return {f"{PREFIX}{key}": value.clone() for key, value in cell.state_dict().items()}


def unprefixed(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key[len(PREFIX):]: value for key, value in state.items() if key.startswith(PREFIX)}


def run(cell: ReciprocalGatedCell, fb_inputs: list[torch.Tensor], seed: int) -> list[torch.Tensor]:
    """Run ``cell`` over ``fb_inputs``, with feedforward inputs drawn from ``seed``, and return the outputs."""
    generator = torch.Generator().manual_seed(seed)
    outputs = []
    state = None
    with torch.no_grad():
        for t, fb_input in enumerate(fb_inputs):
            inputs = torch.randn(BATCH, cell.input_in_channels, HEIGHT, WIDTH, generator=generator)
            res_input = torch.randn(BATCH, cell.res_channels, HEIGHT, WIDTH, generator=generator)
            output, state = cell(inputs, state, fb_input=fb_input, res_input=res_input, curr_timestep=t)
            outputs.append(output)
    return outputs


@pytest.mark.parametrize(("overrides", "block_sizes", "order", "permutation"), CASES, ids=CASE_IDS)
def test_reordered_cell_matches_on_reordered_input(
    overrides: dict[str, Any], block_sizes: list[int], order: list[int], permutation: list[int]
) -> None:
    old_cell = make_cell(**overrides).eval()
    randomize(old_cell, seed=3)
    state = prefixed_state(old_cell)

    new_cell = make_cell(**overrides).eval()
    new_cell.reorder_feedback_channels(state, PREFIX, block_sizes, order)
    new_cell.load_state_dict(unprefixed(state), strict=True)

    generator = torch.Generator().manual_seed(4)
    old_fb = [torch.randn(BATCH, sum(BLOCK_SIZES), HEIGHT, WIDTH, generator=generator) for _ in range(STEPS)]
    new_fb = [fb[:, permutation] for fb in old_fb]
    old_outputs = run(old_cell, old_fb, seed=5)
    new_outputs = run(new_cell, new_fb, seed=5)

    for t, (new, old) in enumerate(zip(new_outputs, old_outputs)):
        torch.testing.assert_close(new, old, msg=lambda m: f"output at step {t}: {m}")


def test_reordered_cell_differs_without_reorder() -> None:
    # Guards the test above: the permuted input alone must change the output.
    cell = make_cell().eval()
    randomize(cell, seed=3)
    generator = torch.Generator().manual_seed(4)
    old_fb = [torch.randn(BATCH, sum(BLOCK_SIZES), HEIGHT, WIDTH, generator=generator) for _ in range(STEPS)]

    old_outputs = run(cell, old_fb, seed=5)
    permuted_outputs = run(cell, [fb[:, PERMUTATION] for fb in old_fb], seed=5)

    assert not torch.allclose(old_outputs[-1], permuted_outputs[-1])


def test_plain_conv_blocks_land_on_new_channels() -> None:
    cell = make_cell()
    randomize(cell, seed=6)
    state = prefixed_state(cell)
    before = state[f"{PREFIX}feedback_conv.conv.weight"].clone()

    cell.reorder_feedback_channels(state, PREFIX, BLOCK_SIZES, ORDER)
    after = state[f"{PREFIX}feedback_conv.conv.weight"]

    assert torch.equal(after[:, 0:1], before[:, 3:4])
    assert torch.equal(after[:, 1:3], before[:, 0:2])
    assert torch.equal(after[:, 3:4], before[:, 2:3])


def test_depth_separable_blocks_land_on_new_channels() -> None:
    cell = make_cell(feedback_depth_separable=True, ds_repeat=True)
    randomize(cell, seed=7)
    state = prefixed_state(cell)
    before = {key: value.clone() for key, value in state.items()}

    cell.reorder_feedback_channels(state, PREFIX, BLOCK_SIZES, ORDER)

    for name in ("depth_wise.weight", "depth_wise.bias", "repeat_depth.weight", "repeat_depth.bias"):
        key = f"{PREFIX}feedback_conv.{name}"
        assert torch.equal(state[key][0:1], before[key][3:4]), name
        assert torch.equal(state[key][1:3], before[key][0:2]), name
        assert torch.equal(state[key][3:4], before[key][2:3]), name
    point_wise = f"{PREFIX}feedback_conv.point_wise.weight"
    assert torch.equal(state[point_wise][:, 0:1], before[point_wise][:, 3:4])
    assert torch.equal(state[point_wise][:, 1:3], before[point_wise][:, 0:2])
    assert torch.equal(state[point_wise][:, 3:4], before[point_wise][:, 2:3])


@pytest.mark.parametrize(("overrides", "block_sizes", "order"), [case[:3] for case in CASES], ids=CASE_IDS)
def test_other_tensors_unchanged(overrides: dict[str, Any], block_sizes: list[int], order: list[int]) -> None:
    cell = make_cell(**overrides)
    randomize(cell, seed=8)
    state = prefixed_state(cell)
    state["nodes.V1.recurrent_cell.feedback_conv.conv.weight"] = torch.randn(6, 4, 3, 3)
    before = {key: value.clone() for key, value in state.items()}
    permuted = {
        f"{PREFIX}feedback_conv.{name}"
        for name in ("conv.weight", "depth_wise.weight", "depth_wise.bias", "repeat_depth.weight",
                     "repeat_depth.bias", "point_wise.weight")
    }

    cell.reorder_feedback_channels(state, PREFIX, block_sizes, order)

    assert state.keys() == before.keys()
    changed = [key for key in permuted & before.keys() if not torch.equal(state[key], before[key])]
    assert changed, "no feedback tensor was permuted"
    for key, value in before.items():
        if key not in permuted:
            assert torch.equal(state[key], value), f"{key} changed"


def test_identity_order_changes_nothing() -> None:
    cell = make_cell(feedback_depth_separable=True)
    randomize(cell, seed=9)
    state = prefixed_state(cell)
    before = {key: value.clone() for key, value in state.items()}

    cell.reorder_feedback_channels(state, PREFIX, BLOCK_SIZES, [0, 1, 2])

    for key, value in before.items():
        assert torch.equal(state[key], value), f"{key} changed"


def test_missing_or_wrong_size_weight_kept() -> None:
    cell = make_cell()
    wrong_size = torch.randn(6, 5, 3, 3)
    state = {f"{PREFIX}feedback_conv.conv.weight": wrong_size}

    cell.reorder_feedback_channels(state, PREFIX, BLOCK_SIZES, ORDER)
    assert state[f"{PREFIX}feedback_conv.conv.weight"] is wrong_size

    empty: dict[str, torch.Tensor] = {}
    cell.reorder_feedback_channels(empty, PREFIX, BLOCK_SIZES, ORDER)
    assert empty == {}


def test_grouped_conv_keeps_channels_in_group() -> None:
    cell = make_cell(groups=2)
    randomize(cell, seed=10)
    state = prefixed_state(cell)
    key = f"{PREFIX}feedback_conv.conv.weight"
    before = state[key].clone()

    # Blocks [1, 1, 2] in order [1, 0, 2] swap channels 0 and 1, both in group 0.
    cell.reorder_feedback_channels(state, PREFIX, [1, 1, 2], [1, 0, 2])

    out_per_group = before.shape[0] // 2
    assert torch.equal(state[key][:out_per_group, 0], before[:out_per_group, 1])
    assert torch.equal(state[key][:out_per_group, 1], before[:out_per_group, 0])
    assert torch.equal(state[key][out_per_group:], before[out_per_group:])


def test_grouped_conv_rejects_cross_group_move() -> None:
    cell = make_cell(groups=2)
    state = prefixed_state(cell)

    with pytest.raises(ValueError, match="between the conv's 2 groups"):
        cell.reorder_feedback_channels(state, PREFIX, [2, 2], [1, 0])


@pytest.mark.parametrize(
    ("block_sizes", "order", "expected"),
    [
        ([1, 2], [1, 0], "add up to 3 channels but the cell has fb_channels=4"),
        ([0, 4], [1, 0], "positive integers"),
        ([2, 2], [0, 0], "exactly once"),
        ([2, 2], [0, 2], "exactly once"),
        ([2, 2], [1], "exactly once"),
        ([2, 2], [1.0, 0.0], "exactly once"),
    ],
)
def test_invalid_blocks_rejected(block_sizes: list, order: list, expected: str) -> None:
    cell = make_cell()
    with pytest.raises(ValueError, match=expected):
        cell.reorder_feedback_channels(prefixed_state(cell), PREFIX, block_sizes, order)


def test_cell_without_feedback_rejected() -> None:
    cell = make_cell(fb_channels=None)
    with pytest.raises(ValueError, match="fb_channels=None"):
        cell.reorder_feedback_channels(prefixed_state(cell), PREFIX, BLOCK_SIZES, ORDER)
