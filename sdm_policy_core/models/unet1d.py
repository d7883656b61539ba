# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""ConditionalUnet1D of Diffusion Policy / DP3: a 1-D temporal U-Net over the action sequence.

Every residual block is FiLM-conditioned on (diffusion-step embedding ⊕ global observation
condition): the condition predicts a per-channel scale and bias (`cond_predict_scale=True`).
The sequence is halved `len(down_dims) - 1` times, so the horizon must be divisible by
2 ** (len(down_dims) - 1) (e.g. 16 -> 8 -> 4, or 4 -> 2 -> 1 with three levels).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn


class SinusoidalPosEmb(nn.Module):
    """Transformer sinusoidal embedding of the diffusion step: (B,) -> (B, dim)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 4 or dim % 2:
            raise ValueError(f"SinusoidalPosEmb needs an even dim >= 4, got {dim}")
        self.dim = dim

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        scale = math.log(10000) / (half - 1)
        freqs = torch.exp(torch.arange(half, device=timesteps.device) * -scale)
        args = timesteps.float()[:, None] * freqs[None, :]
        return torch.cat((args.sin(), args.cos()), dim=-1)


class DiffusionStepEncoder(nn.Sequential):
    """The diffusion step's embedding and the condition every FiLM block of a denoiser sees.

    The embedding: sinusoidal -> Linear -> Mish -> Linear; the condition: that embedding ⊕ the
    global observation features. Shared by the U-Net and the MLP denoiser (the same
    state-dict keys as Diffusion Policy's `diffusion_step_encoder` Sequential).
    """

    def __init__(self, dim: int, global_cond_dim: int) -> None:
        super().__init__(
            SinusoidalPosEmb(dim), nn.Linear(dim, 4 * dim), nn.Mish(), nn.Linear(4 * dim, dim)
        )
        self.global_cond_dim = global_cond_dim
        self.cond_dim = dim + global_cond_dim

    def condition(
        self, timestep: torch.Tensor | int, batch: int, global_cond: torch.Tensor | None
    ) -> torch.Tensor:
        """Map timestep (B,) or scalar, global_cond (B, G) -> (B, cond_dim)."""
        param = self[1].weight
        timesteps = torch.as_tensor(timestep, device=param.device)
        if timesteps.dim() == 0:
            timesteps = timesteps[None]
        cond = self(timesteps.expand(batch))
        if self.global_cond_dim:
            if global_cond is None or global_cond.shape != (batch, self.global_cond_dim):
                got = None if global_cond is None else tuple(global_cond.shape)
                raise ValueError(
                    f"global_cond must be ({batch}, {self.global_cond_dim}), got {got}"
                )
            cond = torch.cat([cond, global_cond], dim=-1)
        return cond


class Downsample1d(nn.Module):
    """Stride-2 convolution: (B, C, T) -> (B, C, T / 2)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample1d(nn.Module):
    """Transposed convolution: (B, C, T) -> (B, C, 2 T)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose1d(dim, dim, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Conv1dBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish: (B, C_in, T) -> (B, C_out, T)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, n_groups: int = 8
    ) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, out_channels),
            nn.Mish(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class ConditionalResidualBlock1D(nn.Module):
    """Two Conv1dBlocks with FiLM between them and a residual connection.

    x (B, C_in, T), cond (B, cond_dim) -> (B, C_out, T). The condition goes through
    Mish -> Linear to 2 * C_out values: a scale and a bias per output channel.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        cond_dim: int,
        kernel_size: int = 3,
        n_groups: int = 8,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.blocks = nn.ModuleList(
            [
                Conv1dBlock(in_channels, out_channels, kernel_size, n_groups),
                Conv1dBlock(out_channels, out_channels, kernel_size, n_groups),
            ]
        )
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * out_channels))
        self.residual_conv: nn.Module = (
            nn.Conv1d(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        out = self.blocks[0](x)
        film = self.cond_encoder(cond).view(cond.shape[0], 2, self.out_channels, 1)
        out = film[:, 0] * out + film[:, 1]
        out = self.blocks[1](out)
        return out + self.residual_conv(x)


class ConditionalUnet1D(nn.Module):
    """Denoiser eps/x0 = f(x_t, t, obs) over action sequences (Diffusion Policy / DP3).

    Args:
        input_dim: action dimension (channels of the sequence).
        global_cond_dim: size of the observation condition (feature_dim * n_obs_steps).
        diffusion_step_embed_dim: size of the diffusion-step embedding (dsed).
        down_dims: channels per U-Net level, e.g. (128, 256, 384) for Simple DP3.
        kernel_size: odd temporal kernel size of the convolutions.
        n_groups: GroupNorm groups; every entry of down_dims must be divisible by it.
    """

    def __init__(
        self,
        input_dim: int,
        global_cond_dim: int,
        diffusion_step_embed_dim: int = 128,
        down_dims: Sequence[int] = (128, 256, 384),
        kernel_size: int = 5,
        n_groups: int = 8,
    ) -> None:
        super().__init__()
        down_dims = tuple(int(d) for d in down_dims)
        if input_dim <= 0 or global_cond_dim < 0 or not down_dims:
            raise ValueError(
                f"ConditionalUnet1D needs input_dim > 0, global_cond_dim >= 0 and "
                f"down_dims, got {input_dim}, {global_cond_dim}, {down_dims}"
            )
        if kernel_size % 2 != 1:
            raise ValueError(f"ConditionalUnet1D needs an odd kernel_size, got {kernel_size}")
        if any(d % n_groups for d in down_dims):
            raise ValueError(f"down_dims {down_dims} must be divisible by n_groups={n_groups}")
        self.input_dim = input_dim
        self.global_cond_dim = global_cond_dim
        self.down_dims = down_dims
        self.downsample_factor = 2 ** (len(down_dims) - 1)

        self.diffusion_step_encoder = DiffusionStepEncoder(
            diffusion_step_embed_dim, global_cond_dim
        )
        cond_dim = self.diffusion_step_encoder.cond_dim

        def block(c_in: int, c_out: int) -> ConditionalResidualBlock1D:
            return ConditionalResidualBlock1D(c_in, c_out, cond_dim, kernel_size, n_groups)

        all_dims = (input_dim, *down_dims)
        in_out = list(itertools.pairwise(all_dims))
        self.down_modules = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(in_out):
            is_last = i == len(in_out) - 1
            self.down_modules.append(
                nn.ModuleList(
                    [
                        block(c_in, c_out),
                        block(c_out, c_out),
                        Downsample1d(c_out) if not is_last else nn.Identity(),
                    ]
                )
            )
        mid = down_dims[-1]
        self.mid_modules = nn.ModuleList([block(mid, mid), block(mid, mid)])
        # The up path mirrors every level but the first; its skip input is the matching level
        # of the down path (the first level's output is not reused, as in the original).
        self.up_modules = nn.ModuleList()
        for c_in, c_out in reversed(in_out[1:]):
            self.up_modules.append(
                nn.ModuleList(
                    [
                        block(2 * c_out, c_in),
                        block(c_in, c_in),
                        Upsample1d(c_in),
                    ]
                )
            )
        start = down_dims[0]
        self.final_conv = nn.Sequential(
            Conv1dBlock(start, start, kernel_size, n_groups),
            nn.Conv1d(start, input_dim, 1),
        )

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | int,
        global_cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict eps or x0 for the whole action sequence.

        Args:
            sample: (B, T, input_dim) noisy action sequence; T divisible by downsample_factor.
            timestep: (B,) or scalar diffusion step (integer, 0..num_train_timesteps-1).
            global_cond: (B, global_cond_dim) flattened observation features.

        Returns:
            (B, T, input_dim).
        """
        if sample.dim() != 3 or sample.shape[-1] != self.input_dim:
            raise ValueError(f"sample must be (B, T, {self.input_dim}), got {tuple(sample.shape)}")
        B, T, _ = sample.shape
        if T % self.downsample_factor:
            raise ValueError(
                f"horizon T={T} must be divisible by {self.downsample_factor} "
                f"for down_dims={self.down_dims}"
            )
        cond = self.diffusion_step_encoder.condition(timestep, B, global_cond)

        x = sample.transpose(1, 2)  # (B, input_dim, T)
        skips: list[torch.Tensor] = []
        for res1, res2, down in self.down_modules:
            x = res2(res1(x, cond), cond)
            skips.append(x)
            x = down(x)
        for res in self.mid_modules:
            x = res(x, cond)
        for res1, res2, up in self.up_modules:
            x = torch.cat((x, skips.pop()), dim=1)
            x = up(res2(res1(x, cond), cond))
        return self.final_conv(x).transpose(1, 2)
