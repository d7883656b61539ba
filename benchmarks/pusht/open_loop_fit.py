# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Does a state-only PushT teacher fit its demonstrations? Open-loop action error on windows.

    python benchmarks/pusht/open_loop_fit.py --checkpoint RUN/checkpoints/latest \
        [--dataset PUSHT.zarr] [--windows 256] [--out RESULT.json]

For `--windows` random training windows and as many validation windows (the checkpoint's own
episode split: train.seed, train.val_fraction), the policy sees the window's observation steps
and predicts its action chunk; the executed actions (sequence indices n_obs_steps - 1 onward,
n_action_steps of them, as `sdm eval` executes them) are compared with the recorded ones.
Errors are Euclidean distances in pixels, `first` (the action taken at the newest observation)
and `executed` (mean over the chunk), for DDIM-10 samples and the naive one-step call
(x0 at t = T - 1: about the conditional mean). Two references on the same windows:
`hold` (every action = the current agent position) and `linear` (least squares from the
flattened observation steps to the executed actions, fitted on every training window).
A teacher whose naive call is far above `linear` has not learned what its observations
determine; train ~ val means under-fitting rather than over-fitting.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from sdm_policy_core.data import TrajectoryDataset
from sdm_policy_core.policies.loading import load_policy
from sdm_policy_core.training.data import dataset_keys

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATASET = (
    REPO.parent
    / "shared/external/humanoid-collective_diffusion_policy_soup/data/pusht"
    / "pusht_cchi_v7_replay.zarr"
)


def _windows(dataset: TrajectoryDataset, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the raw-state observations and the actions of the windows at `indices`.

    (obs (N, To, Ds) raw state, actions (N, H, Da)) of the windows at `indices`; To is the
    checkpoint's n_obs_steps (the first To steps of each window).
    """
    items = [dataset[int(i)] for i in indices]
    obs = np.stack([it["obs"]["agent_pos"].numpy() for it in items])
    actions = np.stack([it["action"].numpy() for it in items])
    return obs, actions


def _errors(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """pred, target (N, Ta, 2) px -> mean distance of the first and of all executed actions."""
    dist = np.linalg.norm(pred - target, axis=-1)
    return {"first": float(dist[:, 0].mean()), "executed": float(dist.mean())}


def open_loop_fit(checkpoint: Path, dataset: Path, windows: int, seed: int) -> dict:
    """Compute the error table of the module docstring, per split, with the references."""
    torch.set_num_threads(1)
    policy = load_policy(checkpoint)
    cfg = policy.cfg
    if cfg.obs.point_cloud_shape is not None or cfg.obs.image_shape is not None:
        raise SystemExit(f"{checkpoint} is not a state-only policy (obs {cfg.obs})")
    m = cfg.model
    To, start, n_exec = m.n_obs_steps, m.n_obs_steps - 1, m.n_action_steps
    train = TrajectoryDataset(
        dataset,
        m.horizon,
        To,
        n_exec,
        keys=dataset_keys(cfg),
        val_fraction=cfg.train.val_fraction,
        seed=cfg.train.seed,
        split="train",
    )
    splits = {"train": train, "val": train.split_dataset("val")}
    # Least-squares reference on every training window: [obs steps, 1] -> executed actions.
    all_obs, all_act = _windows(train, np.arange(len(train)))
    features = np.concatenate(
        [all_obs[:, :To].reshape(len(all_obs), -1), np.ones((len(all_obs), 1))], 1
    )
    targets = all_act[:, start : start + n_exec].reshape(len(all_act), -1)
    weights, *_ = np.linalg.lstsq(features, targets, rcond=None)
    rng = np.random.default_rng(seed)
    result: dict = {
        "checkpoint": str(checkpoint),
        "dataset": str(dataset),
        "n_obs_steps": To,
        "horizon": m.horizon,
        "n_action_steps": n_exec,
        "windows": windows,
        "units": "px (Euclidean distance of agent targets)",
    }
    for name, split in splits.items():
        idx = rng.choice(len(split), size=min(windows, len(split)), replace=False)
        obs, actions = _windows(split, idx)
        target = actions[:, start : start + n_exec]
        batch = {"agent_pos": torch.from_numpy(obs[:, :To])}
        generator = torch.Generator().manual_seed(seed)
        row: dict = {"windows": len(idx)}
        for sampler, steps, key in (("ddim", 10, "ddim10"), ("one-step", 1, "naive_one_step")):
            with torch.no_grad():
                out = policy.predict_action(batch, sampler, steps, generator=generator)
            row[key] = _errors(out["action"].numpy(), target)
        hold = np.repeat(obs[:, To - 1 : To, :2], n_exec, axis=1)
        row["hold"] = _errors(hold, target)
        feats = np.concatenate([obs[:, :To].reshape(len(obs), -1), np.ones((len(obs), 1))], 1)
        row["linear"] = _errors((feats @ weights).reshape(target.shape), target)
        result[name] = row
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--windows", type=int, default=256, help="windows per split")
    parser.add_argument("--seed", type=int, default=0, help="window choice and sampler noise")
    parser.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    args = parser.parse_args()
    if args.windows < 1:
        parser.error(f"--windows must be >= 1, got {args.windows}")
    result = open_loop_fit(args.checkpoint, args.dataset, args.windows, args.seed)
    result["command"] = " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    for split in ("train", "val"):
        row = result[split]
        cells = ", ".join(
            f"{k} {row[k]['first']:.1f}/{row[k]['executed']:.1f}"
            for k in ("ddim10", "naive_one_step", "linear", "hold")
        )
        print(f"{split} (first/executed px): {cells}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
