# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Networks of sdm_policy_core.models: shapes, invariances, conditioning, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sdm_policy_core.config import ConfigError, ModelConfig, ObservationSpec
from sdm_policy_core.models import (
    AGENT_POS,
    IMAGE,
    POINT_CLOUD,
    ConditionalUnet1D,
    ObservationEncoder,
    PointCloudEncoder,
    RandomCrop,
    ResNet18Encoder,
    StateEncoder,
    build_denoiser,
    build_observation_encoder,
    count_parameters,
)

OBS = ObservationSpec(point_cloud_shape=(64, 3), state_dim=4, action_dim=4)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _model(preset: str = "cpu_small", horizon: int = 16, **kwargs) -> ModelConfig:
    n_action_steps = 8 if horizon == 16 else 3
    return ModelConfig(
        preset=preset, horizon=horizon, n_obs_steps=2, n_action_steps=n_action_steps, **kwargs
    )


def _unet_inputs(unet: ConditionalUnet1D, batch: int, horizon: int, device: str = "cpu"):
    sample = torch.randn(batch, horizon, unet.input_dim, device=device)
    timestep = torch.randint(0, 100, (batch,), device=device)
    cond = torch.randn(batch, unet.global_cond_dim, device=device)
    return sample, timestep, cond


@pytest.mark.parametrize("horizon", [16, 4])
@pytest.mark.parametrize("preset", ["cpu_small", "simple_dp3"])
def test_unet_output_shape_per_preset(preset: str, horizon: int) -> None:
    unet = build_denoiser(OBS, _model(preset, horizon))
    assert unet.global_cond_dim == 2 * 128  # (64 point + 64 state features) x 2 obs steps
    with torch.no_grad():
        out = unet(*_unet_inputs(unet, 2, horizon))
    assert out.shape == (2, horizon, OBS.action_dim)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("horizon", [16, 4])
def test_full_dp3_unet_shape_and_size_on_meta_device(horizon: int) -> None:
    # The full DP3 UNet has ~255M parameters: size and shape-check it without allocating it.
    with torch.device("meta"):
        unet = build_denoiser(OBS, _model("dp3", horizon))
        out = unet(*_unet_inputs(unet, 2, horizon, device="meta"))
    assert out.shape == (2, horizon, OBS.action_dim)
    n_dp3 = count_parameters(unet)
    n_simple = count_parameters(build_denoiser(OBS, _model("simple_dp3")))
    n_small = count_parameters(build_denoiser(OBS, _model("cpu_small")))
    assert 240e6 < n_dp3 < 270e6
    assert n_small < n_simple < n_dp3
    assert 5e6 < n_simple < 30e6


def test_unet_rejects_horizon_not_divisible_by_downsampling() -> None:
    unet = ConditionalUnet1D(4, 8, 16, (16, 32, 64), 5, 8)
    with pytest.raises(ValueError, match="divisible by 4"):
        unet(torch.randn(1, 6, 4), 0, torch.randn(1, 8))


def test_film_conditioning_changes_output() -> None:
    unet = build_denoiser(OBS, _model()).eval()
    sample, timestep, cond = _unet_inputs(unet, 2, 16)
    with torch.no_grad():
        out = unet(sample, timestep, cond)
        same = unet(sample, timestep, cond.clone())
        other = unet(sample, timestep, cond + torch.randn_like(cond))
    torch.testing.assert_close(out, same)
    assert (out - other).abs().mean() > 1e-3


def test_timestep_changes_output_and_scalar_broadcasts() -> None:
    unet = build_denoiser(OBS, _model()).eval()
    sample, _, cond = _unet_inputs(unet, 3, 16)
    with torch.no_grad():
        t99 = unet(sample, torch.full((3,), 99, dtype=torch.long), cond)
        t5 = unet(sample, torch.full((3,), 5, dtype=torch.long), cond)
        scalar = unet(sample, 99, cond)
        scalar_tensor = unet(sample, torch.tensor(99), cond)
    assert (t99 - t5).abs().mean() > 1e-3
    torch.testing.assert_close(scalar, t99)
    torch.testing.assert_close(scalar_tensor, t99)


def test_gradients_reach_every_parameter() -> None:
    # DDP with find_unused_parameters=False needs every parameter in the graph.
    encoder = build_observation_encoder(OBS, _model())
    unet = build_denoiser(OBS, _model())
    batch = {POINT_CLOUD: torch.randn(4, 64, 3), AGENT_POS: torch.randn(4, 4)}
    cond = encoder(batch).reshape(2, -1)
    out = unet(torch.randn(2, 16, 4), torch.tensor([3, 80]), cond)
    out.square().mean().backward()
    for module in (encoder, unet):
        for name, param in module.named_parameters():
            assert param.grad is not None, f"{name} gets no gradient"
            assert param.grad.abs().sum() > 0, f"{name} gets a zero gradient"


def test_point_encoder_is_permutation_invariant() -> None:
    encoder = PointCloudEncoder(3, (16, 32, 64), 32).eval()
    points = torch.randn(3, 100, 3)
    shuffled = points[:, torch.randperm(100)]
    with torch.no_grad():
        torch.testing.assert_close(encoder(points), encoder(shuffled))
        assert encoder(points).shape == (3, 32)


def test_point_encoder_layers_follow_dp3() -> None:
    encoder = PointCloudEncoder(3, (64, 128, 256), 64)
    kinds = [type(m) for m in encoder.mlp]
    assert kinds == [nn.Linear, nn.LayerNorm, nn.ReLU] * 3
    assert [type(m) for m in encoder.final_projection] == [nn.Linear, nn.LayerNorm]
    assert count_parameters(encoder) == (3 * 64 + 64 + 2 * 64) + (64 * 128 + 128 + 2 * 128) + (
        128 * 256 + 256 + 2 * 256
    ) + (256 * 64 + 64 + 2 * 64)


def test_state_encoder_has_no_activation_after_last_layer() -> None:
    encoder = StateEncoder(5, (64, 32))
    assert [type(m) for m in encoder.mlp] == [nn.Linear, nn.ReLU, nn.Linear]
    assert encoder(torch.randn(7, 5)).shape == (7, 32)
    assert (encoder(torch.randn(50, 5)) < 0).any()


def test_colour_is_used_only_when_enabled() -> None:
    obs = ObservationSpec(point_cloud_shape=(64, 6), state_dim=4, action_dim=4)
    xyz = torch.randn(2, 64, 3)
    state = torch.randn(2, 4)
    red = torch.cat([xyz, torch.tensor([1.0, 0, 0]).expand(2, 64, 3)], dim=-1)
    blue = torch.cat([xyz, torch.tensor([0, 0, 1.0]).expand(2, 64, 3)], dim=-1)

    plain = ObservationEncoder(obs, _model(use_pc_color=False)).eval()
    assert plain.point_encoder.in_channels == 3
    coloured = ObservationEncoder(obs, _model(use_pc_color=True)).eval()
    assert coloured.point_encoder.in_channels == 6
    with torch.no_grad():
        p_red = plain({POINT_CLOUD: red, AGENT_POS: state})
        p_blue = plain({POINT_CLOUD: blue, AGENT_POS: state})
        p_xyz = plain({POINT_CLOUD: xyz, AGENT_POS: state})
        c_red = coloured({POINT_CLOUD: red, AGENT_POS: state})
        c_blue = coloured({POINT_CLOUD: blue, AGENT_POS: state})
    torch.testing.assert_close(p_red, p_blue)
    torch.testing.assert_close(p_red, p_xyz)
    assert (c_red - c_blue).abs().mean() > 1e-3
    assert c_red.shape == (2, coloured.feature_dim) == (2, 128)


def test_colour_without_colour_channels_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="use_pc_color"):
        ObservationEncoder(OBS, _model(use_pc_color=True))


def test_observation_encoder_reports_missing_key() -> None:
    encoder = ObservationEncoder(OBS, _model())
    with pytest.raises(KeyError, match="agent_pos"):
        encoder({POINT_CLOUD: torch.randn(1, 64, 3)})


def test_image_and_cloud_features_are_concatenated() -> None:
    obs = ObservationSpec(point_cloud_shape=(32, 3), image_shape=(3, 40, 40), state_dim=3)
    encoder = ObservationEncoder(obs, _model(image_crop=(32, 32))).eval()
    assert encoder.feature_dim == 64 + 64 + 64
    batch = {
        POINT_CLOUD: torch.randn(2, 32, 3),
        IMAGE: torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8),
        AGENT_POS: torch.randn(2, 3),
    }
    with torch.no_grad():
        assert encoder(batch).shape == (2, 192)


def test_bad_image_crop_is_a_config_error() -> None:
    obs = ObservationSpec(point_cloud_shape=None, image_shape=(3, 32, 32), state_dim=3)
    with pytest.raises(ConfigError, match="image_crop"):
        ObservationEncoder(obs, _model(image_crop=(40, 40)))


def test_resnet_uses_group_norm_and_accepts_uint8_or_unit_float() -> None:
    encoder = ResNet18Encoder(out_dim=16).eval()
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in encoder.modules())
    assert sum(isinstance(m, nn.GroupNorm) for m in encoder.modules()) == 20
    # ResNet-18 trunk: 11.17M parameters in torchvision (BatchNorm and GroupNorm have the same
    # affine parameters), minus its 1000-way fc layer (513,000).
    assert count_parameters(encoder.backbone) == 11_689_512 - 513_000
    images = torch.randint(0, 256, (2, 3, 48, 40), dtype=torch.uint8)
    with torch.no_grad():
        from_uint8 = encoder(images)
        from_float = encoder(images.float() / 255.0)
    assert from_uint8.shape == (2, 16)
    torch.testing.assert_close(from_uint8, from_float)


def test_random_crop_is_random_in_training_and_centred_in_eval() -> None:
    crop = RandomCrop(24, 20)
    images = torch.arange(4 * 3 * 32 * 32).reshape(4, 3, 32, 32)
    crop.train()
    crops = [crop(images) for _ in range(5)]
    assert all(c.shape == (4, 3, 24, 20) for c in crops)
    # Each crop is a window of its own image, and windows differ between calls or samples.
    for c in crops:
        for b in range(4):
            top = int(c[b, 0, 0, 0] - images[b, 0, 0, 0]) // 32
            left = int(c[b, 0, 0, 0] - images[b, 0, 0, 0]) % 32
            torch.testing.assert_close(c[b], images[b, :, top : top + 24, left : left + 20])
    corners = {int(c[b, 0, 0, 0] - images[b, 0, 0, 0]) for c in crops for b in range(4)}
    assert len(corners) > 1

    crop.eval()
    centre = images[:, :, 4:28, 6:26]
    torch.testing.assert_close(crop(images), centre)
    torch.testing.assert_close(crop(images), centre)
    with pytest.raises(ValueError, match="exceeds"):
        crop(images[:, :, :16])
