"""Tests of the built-in harbor policies ResizeConcat and Identity."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import tnn_harbors.resize_concat as resize_concat_module
from tnn_core.building import build_component
from tnn_core.errors import ConfigError
from tnn_harbors.identity import IdentityHarbor
from tnn_harbors.resize_concat import ResizeConcat


def build_harbor(spec: dict, input_shapes, output_spatial):
    """Build a harbor policy through the entry-point registry, as the graph does."""
    return build_component(
        "harbor",
        spec,
        where="nodes[n].harbor_policy",
        provided={"input_shapes": input_shapes, "output_spatial": output_spatial},
    )


# ResizeConcat


def test_resize_concat_shape_and_channels():
    harbor = build_harbor({"name": "ResizeConcat"}, [(3, 8, 8), (4, 2, 2), (5, 16, 16)], (8, 8))
    inputs = [torch.randn(2, 3, 8, 8), torch.randn(2, 4, 2, 2), torch.randn(2, 5, 16, 16)]

    output = harbor(inputs)

    assert harbor.out_channels == 12
    assert tuple(output.shape) == (2, 12, 8, 8)


def test_resize_concat_shrink_matches_antialiased_interpolate():
    harbor = ResizeConcat([(3, 16, 16)], (8, 8))
    x = torch.randn(2, 3, 16, 16)

    expected = F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False, antialias=True)

    torch.testing.assert_close(harbor([x]), expected, rtol=0, atol=0)


def test_resize_concat_shrink_differs_from_plain_interpolate():
    harbor = ResizeConcat([(3, 16, 16)], (5, 5))
    x = torch.randn(2, 3, 16, 16)

    plain = F.interpolate(x, size=(5, 5), mode="bilinear", align_corners=False)

    assert not torch.allclose(harbor([x]), plain, atol=1e-3)


def test_resize_concat_bilinear_upsample_equals_plain_interpolate():
    harbor = ResizeConcat([(2, 2, 2)], (8, 8))
    x = torch.randn(2, 2, 2, 2)

    plain = F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False)

    torch.testing.assert_close(harbor([x]), plain, rtol=1e-6, atol=1e-6)


def test_resize_concat_bicubic_uses_antialiased_kernel():
    harbor = ResizeConcat([(2, 3, 3)], (7, 7), interpolation="bicubic")
    x = torch.randn(2, 2, 3, 3)

    expected = F.interpolate(x, size=(7, 7), mode="bicubic", align_corners=False, antialias=True)

    torch.testing.assert_close(harbor([x]), expected, rtol=0, atol=0)


def test_resize_concat_antialias_false():
    harbor = ResizeConcat([(3, 16, 16)], (8, 8), antialias=False)
    x = torch.randn(2, 3, 16, 16)

    expected = F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False, antialias=False)

    torch.testing.assert_close(harbor([x]), expected, rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "area"])
def test_resize_concat_other_modes(mode):
    harbor = build_harbor({"name": "ResizeConcat", "interpolation": mode}, [(3, 12, 12)], (5, 5))
    x = torch.randn(2, 3, 12, 12)

    expected = F.interpolate(x, size=(5, 5), mode=mode)

    torch.testing.assert_close(harbor([x]), expected, rtol=0, atol=0)


def test_resize_concat_same_size_is_no_op(monkeypatch):
    harbor = ResizeConcat([(3, 8, 8), (2, 8, 8)], (8, 8))
    inputs = [torch.randn(2, 3, 8, 8), torch.randn(2, 2, 8, 8)]

    def fail(*args, **kwargs):
        raise AssertionError("interpolate must not run for inputs of the target size")

    monkeypatch.setattr(resize_concat_module.F, "interpolate", fail)
    output = harbor(inputs)

    assert torch.equal(output, torch.cat(inputs, dim=1))


def test_resize_concat_keeps_input_order():
    harbor = ResizeConcat([(1, 4, 4), (2, 4, 4), (3, 4, 4)], (4, 4))
    inputs = [torch.full((1, channels, 4, 4), float(channels)) for channels in (1, 2, 3)]

    output = harbor(inputs)

    assert output[0, :, 0, 0].tolist() == [1.0, 2.0, 2.0, 3.0, 3.0, 3.0]


def test_resize_concat_does_not_mutate_inputs():
    harbor = ResizeConcat([(3, 16, 16), (2, 4, 4)], (8, 8))
    first = torch.randn(2, 3, 16, 16)
    second = torch.randn(2, 2, 4, 4)
    inputs = [first, second]
    copies = [first.clone(), second.clone()]

    harbor(inputs)

    assert len(inputs) == 2
    assert inputs[0] is first
    assert inputs[1] is second
    assert torch.equal(first, copies[0])
    assert torch.equal(second, copies[1])


def test_resize_concat_accepts_tuple_of_inputs():
    harbor = ResizeConcat([(3, 16, 16), (2, 4, 4)], (8, 8))

    output = harbor((torch.randn(2, 3, 16, 16), torch.randn(2, 2, 4, 4)))

    assert tuple(output.shape) == (2, 5, 8, 8)


def test_resize_concat_gradients_flow():
    harbor = ResizeConcat([(3, 16, 16), (2, 4, 4)], (8, 8))
    inputs = [torch.randn(2, 3, 16, 16, requires_grad=True), torch.randn(2, 2, 4, 4, requires_grad=True)]

    harbor(inputs).sum().backward()

    assert inputs[0].grad is not None
    assert inputs[1].grad is not None


def test_resize_concat_vector_inputs():
    harbor = build_harbor({"name": "ResizeConcat"}, [(10,), (6,)], ())
    inputs = [torch.randn(2, 10), torch.randn(2, 6)]

    output = harbor(inputs)

    assert harbor.out_channels == 16
    assert torch.equal(output, torch.cat(inputs, dim=1))


def test_resize_concat_mixed_vector_and_map_raises():
    with pytest.raises(ValueError, match=r"vector inputs \[\(10,\)\].*feature-map inputs \[\(3, 4, 4\)\]"):
        ResizeConcat([(10,), (3, 4, 4)], (4, 4))


def test_resize_concat_maps_without_spatial_size_raise():
    with pytest.raises(ValueError, match="output_spatial"):
        ResizeConcat([(3, 4, 4)], ())


def test_resize_concat_invalid_interpolation_lists_modes():
    with pytest.raises(ConfigError, match=r"interpolation 'linear'.*nearest, nearest-exact, bilinear, bicubic, area"):
        build_harbor({"name": "ResizeConcat", "interpolation": "linear"}, [(3, 4, 4)], (4, 4))


def test_resize_concat_antialias_with_nearest_raises():
    with pytest.raises(ValueError, match="antialias"):
        ResizeConcat([(3, 8, 8)], (4, 4), interpolation="nearest", antialias=True)


@pytest.mark.parametrize(
    ("input_shapes", "output_spatial"),
    [
        ([], (4, 4)),
        ([(3, 4)], (4, 4)),
        ([(0, 4, 4)], (4, 4)),
        ([(3, 4, 4)], (4,)),
        ([(3, 4, 4)], (0, 4)),
    ],
)
def test_resize_concat_invalid_shapes_raise(input_shapes, output_spatial):
    with pytest.raises(ValueError):
        ResizeConcat(input_shapes, output_spatial)


def test_resize_concat_wrong_input_count_raises():
    harbor = ResizeConcat([(3, 4, 4), (2, 4, 4)], (4, 4))

    with pytest.raises(ValueError, match="2 inputs"):
        harbor([torch.randn(2, 3, 4, 4)])


def test_resize_concat_wrong_input_shape_raises():
    harbor = ResizeConcat([(3, 4, 4)], (4, 4))

    with pytest.raises(ValueError, match=r"input 0 has shape \(3, 5, 5\)"):
        harbor([torch.randn(2, 3, 5, 5)])


def test_resize_concat_has_no_parameters():
    harbor = ResizeConcat([(3, 16, 16), (2, 4, 4)], (8, 8))

    assert list(harbor.state_dict()) == []


# Identity harbor


def test_identity_harbor_concatenates():
    harbor = build_harbor({"name": "Identity"}, [(3, 4, 4), (2, 4, 4)], (4, 4))
    inputs = [torch.randn(2, 3, 4, 4), torch.randn(2, 2, 4, 4)]

    output = harbor(inputs)

    assert isinstance(harbor, IdentityHarbor)
    assert harbor.out_channels == 5
    assert torch.equal(output, torch.cat(inputs, dim=1))


def test_identity_harbor_vector_inputs():
    harbor = IdentityHarbor([(4,), (3,)], ())

    output = harbor([torch.randn(2, 4), torch.randn(2, 3)])

    assert tuple(output.shape) == (2, 7)


def test_identity_harbor_different_sizes_raise():
    with pytest.raises(ConfigError, match=r"\[\(3, 4, 4\), \(2, 2, 2\)\].*ResizeConcat"):
        build_harbor({"name": "Identity"}, [(3, 4, 4), (2, 2, 2)], (4, 4))


def test_identity_harbor_size_other_than_target_raises():
    with pytest.raises(ValueError, match="ResizeConcat"):
        IdentityHarbor([(3, 8, 8)], (4, 4))


def test_identity_harbor_does_not_mutate_inputs():
    harbor = IdentityHarbor([(3, 4, 4), (2, 4, 4)], (4, 4))
    inputs = [torch.randn(2, 3, 4, 4), torch.randn(2, 2, 4, 4)]
    originals = list(inputs)

    harbor(inputs)

    assert inputs == originals


def test_identity_harbor_wrong_input_count_raises():
    harbor = IdentityHarbor([(3, 4, 4)], (4, 4))

    with pytest.raises(ValueError, match="1 inputs"):
        harbor([torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)])
