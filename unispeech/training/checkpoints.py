"""Training checkpoints: written atomically, verified on reading, the newest sound one found.

A checkpoint is a folder `step-00001234/` under a run's `checkpoints/`: the trainable weights
(`trainable.safetensors`), the optimiser, scheduler and random-number states (`state.pt`, read
back with `weights_only=True`), one `rng-<rank>.pt` per process, and `trainer.json` (step, config).
It is written into a hidden staging folder and renamed into place only when complete, with
`checksums.json` (the sha256 of every other file) written last; so a killed run never leaves a
half-written folder that looks like a checkpoint, and a rerun of that step starts from an empty
staging folder. `latest_checkpoint` walks from the newest
checkpoint back and returns the first whose files all match their checksums, logging each
damaged one it passes over. `prune` keeps the newest `keep`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

from unispeech.weights.cache import sha256_of

logger = logging.getLogger(__name__)

CHECKSUMS_FILE = "checksums.json"
STEP_FOLDER = re.compile(r"step-(\d+)")
STAGING_PREFIX = ".staging-"


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def staging_folder(root: str | Path, step: int, fresh: bool = False) -> Path:
    """Where the checkpoint of `step` is assembled (every process writes its part there). `fresh`
    empties what an attempt killed while writing this step left there (one process asks for it,
    before the others write)."""
    folder = Path(root) / f"{STAGING_PREFIX}{checkpoint_name(step)}"
    if fresh and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def publish(staging: Path) -> Path:
    """Seal a complete staging folder (checksums last) and rename it into place; returns its path."""
    partial = staging / f"{CHECKSUMS_FILE}.partial"
    checksums = {
        file.name: sha256_of(file)
        for file in sorted(staging.iterdir())
        if file.name not in (CHECKSUMS_FILE, partial.name)  # a killed attempt's partial is no part
    }
    partial.write_text(json.dumps(checksums, indent=2) + "\n")
    os.replace(partial, staging / CHECKSUMS_FILE)
    final = staging.with_name(staging.name.removeprefix(STAGING_PREFIX))
    if final.exists():  # a checkpoint of the same step from an earlier, interrupted attempt
        shutil.rmtree(final)
    os.replace(staging, final)
    return final


def checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """The published checkpoint folders under `root`, as `(step, path)`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in root.iterdir()
        if path.is_dir() and (match := STEP_FOLDER.fullmatch(path.name))
    ]
    return sorted(found)


def verify(folder: str | Path) -> str | None:
    """`None` when every file of the checkpoint matches its checksum, else what is wrong."""
    folder = Path(folder)
    try:
        checksums = json.loads((folder / CHECKSUMS_FILE).read_text())
    except FileNotFoundError:
        return f"no {CHECKSUMS_FILE} (incomplete)"
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return f"unreadable {CHECKSUMS_FILE}: {error}"
    for name, expected in checksums.items():
        file = folder / name
        if not file.is_file():
            return f"{name} is missing"
        if sha256_of(file) != expected:
            return f"{name} does not match its checksum (damaged)"
    return None


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest checkpoint whose files are sound, or `None` when there is none."""
    for step, folder in reversed(checkpoints(root)):
        problem = verify(folder)
        if problem is None:
            return folder
        logger.warning("skipping the checkpoint of step %d at %s: %s", step, folder, problem)
    return None


def prune(root: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints, and leftover staging folders."""
    for _, folder in checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(folder, ignore_errors=True)
    for staging in Path(root).glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(staging, ignore_errors=True)
