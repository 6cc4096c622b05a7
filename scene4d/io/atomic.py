"""Atomic outputs: a file or folder appears whole at its final path, or not at all."""

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scene4d.errors import Scene4DError


def check_replaceable(target: str | Path, previous_output: Callable[[Path], bool]) -> None:
    """Refuse a ``target`` folder that a write would replace whole although it holds something other
    than an earlier output of the same kind (``previous_output``): a file, or a folder of other files."""
    target = Path(target)
    if target.is_file() or (target.is_dir() and any(target.iterdir()) and not previous_output(target)):
        raise Scene4DError(
            f"{target} holds other files, and the output replaces the whole folder; give a new or empty folder"
        )


@contextmanager
def atomic_directory(
    target: str | Path, previous_output: Callable[[Path], bool] = lambda folder: True
) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; on success it replaces ``target``.

    On any exception, Ctrl-C included, the temporary folder is removed and an existing
    ``target`` is left untouched. A ``target`` that holds anything but an earlier output
    (``previous_output``, ``check_replaceable``) is refused before anything is written.
    """
    target = Path(target)
    check_replaceable(target, previous_output)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        if target.exists():
            retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            target.rename(retired)
            try:
                staging.rename(target)
            except BaseException:
                retired.rename(target)
                raise
            shutil.rmtree(retired)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` (same suffix); on success it replaces ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.stem}.tmp-{uuid.uuid4().hex[:8]}{target.suffix}"
    try:
        yield staging
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def write_json(path: str | Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path``, atomically."""
    with atomic_file(path) as staging:
        staging.write_text(json.dumps(payload, indent=2) + "\n")
