"""Whether the installed libraries work together, said in one line before anything deep fails.

transformers checks the installed peft against a minimum of its own at every adapter call and
raises from deep inside a load. A new transformers release can raise that minimum above every
peft that exists (transformers 5.24.0 asked for peft >= 0.22.0 when 0.21.2 was the newest), so an
unpinned install breaks every adapter load. `check_peft` asks the same question up front and names
both installed versions and the fix: unispeech's own tested ranges (its package metadata, from
pyproject.toml) and the lock (`constraints.txt`, which `.ci/setup` installs from).
"""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement
from packaging.version import Version


class IncompatibleVersionsError(RuntimeError):
    """Two installed libraries that cannot work together."""


def declared_range(package: str) -> str:
    """unispeech's declared requirement on `package` (e.g. `transformers<=5.23.0,>=5.0`), or the bare name."""
    try:
        requirements = metadata.requires("unispeech") or []
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return package
    for line in requirements:
        requirement = Requirement(line)
        if requirement.name == package:
            return f"{package}{requirement.specifier}"
    return package


def check_peft() -> None:
    """Raise `IncompatibleVersionsError` if the installed transformers refuses the installed peft."""
    from transformers.integrations import peft as transformers_peft

    required = getattr(transformers_peft, "MIN_PEFT_VERSION", None)
    if required is None:  # a transformers that no longer states it: let its own check speak
        return
    installed = {package: metadata.version(package) for package in ("transformers", "peft")}
    if Version(installed["peft"]) >= Version(required):
        return
    raise IncompatibleVersionsError(
        f"transformers {installed['transformers']} needs peft >= {required} to load adapters, but peft "
        f"{installed['peft']} is installed: install the tested versions "
        f"(pip install '{declared_range('transformers')}' '{declared_range('peft')}', or the lock: "
        "bash .ci/setup in the unispeech repository, which installs from constraints.txt)"
    )
