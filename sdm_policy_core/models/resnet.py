# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Image encoder of Diffusion Policy: ResNet-18 with GroupNorm, trained from scratch.

Written in plain torch (no torchvision). As in Diffusion Policy, every BatchNorm of the standard
ResNet-18 is a GroupNorm with `channels // 16` groups, so the encoder behaves the same in training
and evaluation and with any batch size (BatchNorm statistics break under EMA and small batches).

Images enter as (B, 3, H, W) RGB, either uint8 in [0, 255] or floating point in [0, 1]; the
encoder crops them (`RandomCrop`), scales them to [-1, 1] and returns (B, out_dim) features.
"""

from __future__ import annotations

import torch
from torch import nn

RESNET18_FEATURE_DIM = 512


def _group_norm(channels: int, group_size: int = 16) -> nn.GroupNorm:
    return nn.GroupNorm(max(1, channels // group_size), channels)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with GroupNorm and a (projected) identity shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm1 = _group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.norm2 = _group_norm(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                _group_norm(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18GN(nn.Module):
    """ResNet-18 trunk with GroupNorm: (B, 3, H, W) float -> (B, 512) after global average pool.

    Any H, W >= 16 works (the trunk downsamples by 32 and then averages over space).
    """

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False),
            _group_norm(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        stages: list[nn.Module] = []
        width = 64
        for i, channels in enumerate((64, 128, 256, RESNET18_FEATURE_DIM)):
            stride = 1 if i == 0 else 2
            stages.append(
                nn.Sequential(
                    BasicBlock(width, channels, stride), BasicBlock(channels, channels, 1)
                )
            )
            width = channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float (already normalised) -> (B, 512)."""
        return self.pool(self.stages(self.stem(images))).flatten(1)


class RandomCrop(nn.Module):
    """Crop (B, C, H, W) images to (B, C, height, width); any dtype.

    Training mode: an independent uniformly random crop per image. Eval mode: the center crop
    (deterministic), so evaluation sees the same view that training saw on average.
    """

    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        if height <= 0 or width <= 0:
            raise ValueError(f"RandomCrop needs a positive size, got ({height}, {width})")
        self.height = height
        self.width = width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, height, width)."""
        if images.dim() != 4:
            raise ValueError(f"RandomCrop expects (B, C, H, W), got {tuple(images.shape)}")
        B, _, H, W = images.shape
        h, w = self.height, self.width
        if h > H or w > W:
            raise ValueError(f"RandomCrop size ({h}, {w}) exceeds the image size ({H}, {W})")
        if not self.training:
            top, left = (H - h) // 2, (W - w) // 2
            return images[:, :, top : top + h, left : left + w]
        device = images.device
        top = torch.randint(0, H - h + 1, (B,), device=device)
        left = torch.randint(0, W - w + 1, (B,), device=device)
        rows = top[:, None] + torch.arange(h, device=device)  # (B, h)
        cols = left[:, None] + torch.arange(w, device=device)  # (B, w)
        batch = torch.arange(B, device=device)[:, None, None]
        # Advanced indexing over (batch, row, col) moves the channel axis last: (B, h, w, C).
        crops = images.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
        return crops.permute(0, 3, 1, 2).contiguous()

    def extra_repr(self) -> str:
        return f"height={self.height}, width={self.width}"


def images_to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 in [0, 255] -> float32 in [0, 1]; floating point images are taken as in [0, 1]."""
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if not images.is_floating_point():
        raise TypeError(f"images must be uint8 or floating point, got {images.dtype}")
    return images.float()


class ResNet18Encoder(nn.Module):
    """Crop -> scale to [-1, 1] -> ResNet-18 (GroupNorm) -> Linear: (B, 3, H, W) -> (B, out_dim).

    Images: uint8 RGB in [0, 255] or floating point RGB in [0, 1]. `crop_shape` (h, w) enables
    `RandomCrop` (random in training, center in eval); None feeds the full image.
    """

    def __init__(
        self, out_dim: int = 64, crop_shape: tuple[int, int] | None = None, in_channels: int = 3
    ) -> None:
        super().__init__()
        if out_dim <= 0:
            raise ValueError(f"ResNet18Encoder needs out_dim > 0, got {out_dim}")
        self.out_dim = out_dim
        self.in_channels = in_channels
        self.crop: nn.Module = RandomCrop(*crop_shape) if crop_shape is not None else nn.Identity()
        self.backbone = ResNet18GN(in_channels)
        self.projection = nn.Linear(RESNET18_FEATURE_DIM, out_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) uint8 in [0, 255] or float in [0, 1] -> (B, out_dim)."""
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"ResNet18Encoder expects (B, {self.in_channels}, H, W), got {tuple(images.shape)}"
            )
        x = images_to_unit_float(self.crop(images)) * 2.0 - 1.0
        return self.projection(self.backbone(x))
