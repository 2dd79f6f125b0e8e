"""The lock (constraints.txt): the exact versions the test suite passed with, written and checked.

    python .ci/lock.py check constraints.txt   # exit 1, naming each package, if this environment drifts
    python .ci/lock.py write constraints.txt   # the lock of this environment (.ci/update-lock calls it)

Run with the environment's own interpreter (`.venv/bin/python`): it reads that environment's
installed distributions. A drift is a package installed at another version than the lock's, or
installed and absent from the lock (a new dependency nobody tested). Packages of the lock that are
not installed are fine: they belong to extras this environment did not ask for. The venv's own
tools (pip, setuptools, wheel) and unispeech itself are not locked. A local version label
(torch's `+cpu`) is ignored: `torch==2.13.0` is the CPU wheel on our machines and a CUDA one elsewhere.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

UNLOCKED = {"pip", "setuptools", "wheel", "unispeech"}
HEADER = """\
# The lock: the exact versions `bash .ci/run` passed with (all extras), used by .ci/setup for every
# install. Do not edit by hand: `bash .ci/update-lock` tries the newest releases pyproject.toml's
# ranges allow and rewrites this file only when the tests pass.
"""


def public(version: str) -> str:
    """A version without its local label: `2.13.0+cpu` → `2.13.0`."""
    return version.split("+", 1)[0]


def installed() -> dict[str, str]:
    versions = {}
    for distribution in metadata.distributions():
        name = canonicalize_name(distribution.metadata["Name"])
        if name not in UNLOCKED:
            versions[name] = public(distribution.version)
    return versions


def read_lock(path: Path) -> dict[str, str]:
    versions = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, separator, version = line.partition("==")
        if not separator or not version.strip():
            raise SystemExit(f"{path}:{number}: expected NAME==VERSION, got {line!r}")
        versions[canonicalize_name(name.strip())] = version.strip()
    return versions


def check(path: Path) -> int:
    lock, here = read_lock(path), installed()
    drift = [
        f"{name} {version} (lock: {lock[name]})" if name in lock else f"{name} {version} (not in the lock)"
        for name, version in sorted(here.items())
        if lock.get(name) != version
    ]
    if drift:
        print(
            f"error: this environment ({sys.prefix}) drifts from {path}: {'; '.join(drift)}. "
            "Install from the lock (`bash .ci/setup EXTRAS` in a fresh .venv), or move the lock "
            "forward on purpose with `bash .ci/update-lock`.",
            file=sys.stderr,
        )
        return 1
    print(f"{len(here)} installed packages match {path}")
    return 0


def write(path: Path) -> int:
    lines = [f"{name}=={version}" for name, version in sorted(installed().items())]
    path.write_text(HEADER + "\n".join(lines) + "\n")
    print(f"wrote {path}: {len(lines)} packages")
    return 0


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in ("check", "write"):
        raise SystemExit(__doc__)
    action = check if sys.argv[1] == "check" else write
    return action(Path(sys.argv[2]))


if __name__ == "__main__":
    sys.exit(main())
