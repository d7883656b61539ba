# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm export`: export a checkpoint's policy to ONNX or TorchScript, verified against PyTorch.

    sdm export --checkpoint CKPT_DIR --format onnx|torchscript --out FILE [--opset N] [--steps K]
               [--quantize int8]

The graph takes raw batch-1 observations with their history (point_cloud (1, To, P, C) float32
and/or image (1, To, 3, H, W) uint8, agent_pos (1, To, Ds) float32) and the sampler's noise
(1, H, Da) float32, and returns action_pred (1, H, Da) in robot units. An SDM checkpoint exports
its one-step generator; a teacher exports DDIM with K steps unrolled (K = --steps, default the
checkpoint's diffusion.num_inference_steps). The file is run on random inputs and compared with
PyTorch before it is kept (max abs diff <= 1e-4, else exit 2 and no file); FILE.json describes
the inputs, the output, the checkpoint and the measured difference. `--quantize int8` (onnx)
writes onnxruntime's dynamic int8 quantisation of the verified graph instead, itself verified
within 0.1 in normalised action units (5 % of the action's range) on 8 random inputs; give it a
file of its own (e.g. policy.int8.onnx) and check its closed-loop success before deploying it
(BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _export(args: argparse.Namespace) -> int:
    import torch

    from sdm_policy_core.checkpoint import CheckpointError
    from sdm_policy_core.export import ExportError, export_policy

    try:
        if args.threads is not None:
            if args.threads < 1:
                raise ExportError(f"--threads must be >= 1, got {args.threads}")
            torch.set_num_threads(args.threads)
        result = export_policy(
            args.checkpoint,
            args.out,
            args.format,
            steps=args.steps,
            opset=args.opset,
            quantize=args.quantize,
        )
    except (CheckpointError, ExportError) as err:
        print(f"sdm export: error: {err}", file=sys.stderr)
        return 2
    meta = result.metadata
    summary = {
        "out": str(result.path),
        "sidecar": str(result.sidecar),
        "kind": meta["kind"],
        "sampler": meta["sampler"],
        "steps": meta["steps"],
        "max_abs_diff": meta["max_abs_diff"],
        "quantization": meta["quantization"],
    }
    if meta["quantization"]:
        summary["int8_max_abs_diff_normalized"] = meta["int8_max_abs_diff_normalized"]
    print(json.dumps(summary))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a policy to ONNX or TorchScript",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, type=Path, help="checkpoint directory")
    p.add_argument("--format", required=True, choices=("onnx", "torchscript"), help="file format")
    p.add_argument("--out", required=True, type=Path, help="file to write (and FILE.json)")
    p.add_argument("--opset", type=int, help="ONNX opset version (default 17)")
    p.add_argument(
        "--steps", type=int, help="DDIM steps K of a teacher (default: the checkpoint's)"
    )
    p.add_argument("--threads", type=int, help="CPU threads of torch and onnxruntime")
    p.add_argument(
        "--quantize",
        choices=("int8",),
        help="write onnxruntime's dynamic int8 quantisation (onnx only; a file of its own)",
    )
    p.set_defaults(func=_export)
