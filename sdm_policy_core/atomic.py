# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Atomic writes of directories (checkpoints, datasets): fill a temp sibling, fsync, rename.

Torch-free, so that the dataset tools (`sdm bag2zarr`, `sdm demos`) do not import torch.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Call fsync on every file and directory under `root` (inclusive)."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            _fsync_path(Path(dirpath) / name)
        _fsync_path(Path(dirpath))


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Write a directory atomically: yields a temp sibling `.{name}.tmp-XXXX` to fill.

    On normal exit the temp directory is fsynced and renamed to `path`; an existing `path` is
    first renamed to `.{name}.old-XXXX` and deleted only once the new one is in place (on a
    failed swap it is renamed back). On an exception the temp directory is deleted and `path` is
    untouched. The caller decides beforehand whether replacing `path` is allowed.
    """
    path = Path(path)
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=parent))
    try:
        yield tmp
        fsync_tree(tmp)
        old: Path | None = None
        if path.exists() or path.is_symlink():
            old = parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            if old is not None:
                os.rename(old, path)
            raise
        _fsync_path(parent)
        if old is not None:
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
