"""Bad input through every surface (issue 21): the Python API, the Hugging Face pipelines, the CLI
and the Gradio demo, each driven with the tiny random model.

Each case is one bad input and each test runs it through one surface, asserting what README promises
there: a clear error of one line that names the problem. The API and the pipelines raise it (a
`ValueError`, `OSError` or `RuntimeError`, never a bare `TypeError` from inside); the CLI exits 2 with
it on stderr and no traceback; the demo, served on 127.0.0.1 and driven through `gradio_client`,
answers with it and then serves the next good request of the same tab. Test ids read
`<input>-<surface>`, so the matrix shows in `pytest -v`; a case that cannot reach a surface (the demo's
N-best box takes text) is left out of that surface's column.

Stereo recordings and odd sample rates are not bad input: they must work on every surface. Nor is
non-speech (white noise, silence, a clipped square wave): it transcribes to "" on every surface.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile
from safetensors import SafetensorError
from transformers import pipeline

import unispeech.interfaces.pipelines  # registers the tasks
from tests.conftest import noise_clip, speech_clip
from tests.test_weights_cache import wheels  # noqa: F401 - a fixture: the fake model's wheels
from unispeech.api import load
from unispeech.interfaces.cli import EXIT_USER_ERROR, main
from unispeech.interfaces.pipelines import NBEST_CORRECTION, SPEECH_RECOGNITION, TEXT_TO_AUDIO
from unispeech.model.adapters import add_task_adapter, save_task_adapter
from unispeech.tasks.decoding import DecodingOptions
from unispeech.tasks.synthesis import SynthesisOptions
from unispeech.tasks.transcription import TranscriptionOptions
from unispeech.testing import tiny_model
from unispeech.weights import cache as weight_cache

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # pandas 3 vs gradio's

SURFACES = ("api", "pipeline", "cli", "demo")
ARRAY_SURFACES = ("api", "pipeline")  # the two that also take audio as arrays
FAST_TRANSCRIPTION = TranscriptionOptions(decoding=DecodingOptions(max_new_tokens=4))
FAST_SYNTHESIS = {"steps": 1, "guidance_strength": 0.0, "duration": 0.3}
PROMPT_TEXT = "a b"
TEXT_CAP = 20  # characters: SynthesisOptions.max_text_characters, and the demo's max_text_chars
MAX_AUDIO_SECONDS = 5.0  # the demo's; the other surfaces take any length


class Refused(Exception):
    """A surface refused its input the way it promises to; the message is what the user reads."""


def _refused(message: str) -> Refused:
    assert message and "\n" not in message.strip(), f"not one line: {message!r}"
    assert "Traceback" not in message, message
    return Refused(message.strip())


# ----------------------------------------------------------------------------------------------------
# The four surfaces, one driver each: a good input returns the result (a transcript, speech as a
# 1-D float array, a correction, a loaded model); a refused one raises `Refused` once the surface
# has kept its own promise (checked here).


class ApiSurface:
    def __init__(self, speech):
        self.speech = speech

    def _call(self, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (ValueError, OSError, RuntimeError) as error:  # AudioError, AdapterError, WeightsError
            raise _refused(str(error)) from None

    def transcribe(self, audio, sampling_rate=None):
        audio = str(audio) if isinstance(audio, Path) else audio
        return self._call(self.speech.transcribe, audio, FAST_TRANSCRIPTION, sampling_rate).text

    def speak(self, text, prompt, max_text_characters=None):
        options = SynthesisOptions(**FAST_SYNTHESIS, max_text_characters=max_text_characters)
        return self._call(self.speech.speak, text, str(prompt), PROMPT_TEXT, options)

    def correct(self, nbest):
        return self._call(self.speech.correct, nbest)

    def load(self, model, adapters="shipped"):
        return self._call(load, model, adapters=adapters)


class PipelineSurface(ApiSurface):
    def __init__(self, pipelines):
        self.pipelines = pipelines

    def transcribe(self, audio, sampling_rate=None):
        if sampling_rate is not None:
            audio = {"raw": audio, "sampling_rate": sampling_rate}
        audio = str(audio) if isinstance(audio, Path) else audio
        return self._call(self.pipelines[SPEECH_RECOGNITION], audio)["text"]

    def speak(self, text, prompt, max_text_characters=None):
        tts = self.pipelines[TEXT_TO_AUDIO]
        out = self._call(
            tts,
            text,
            prompt=str(prompt),
            prompt_text=PROMPT_TEXT,
            max_text_characters=max_text_characters,
            **FAST_SYNTHESIS,
        )
        return out["audio"]

    def correct(self, nbest):
        return self._call(self.pipelines[NBEST_CORRECTION], nbest)["text"]

    def load(self, model, adapters="shipped"):
        """A named model's pipeline is made over its cached base, as README shows."""
        if str(model) in weight_cache.MODELS:
            model = weight_cache.cache_dir(str(model)) / weight_cache.MODEL_DIR
        adapter = unispeech.interfaces.pipelines.SHIPPED if adapters == "shipped" else Path(adapters) / "asr"
        return self._call(pipeline, SPEECH_RECOGNITION, model=str(model), adapter=adapter)


class CliSurface:
    def __init__(self, model_dir, folder, capsys):
        self.model_dir, self.folder, self.capsys = model_dir, folder, capsys

    def run(self, argv):
        """`unispeech ARGV`'s stdout, or `Refused` after checking exit code 2 and one line on stderr."""
        self.capsys.readouterr()
        code = main(argv)
        captured = self.capsys.readouterr()
        if code == 0:
            return captured.out
        assert code == EXIT_USER_ERROR, (code, captured.err)
        prefix = f"unispeech {argv[0]}: error: "
        assert captured.err.startswith(prefix) and captured.err.count("\n") == 1, captured.err
        assert "Traceback" not in captured.out
        raise _refused(captured.err.removeprefix(prefix))

    def model_flags(self):
        return ["--model", str(self.model_dir), "--adapters", "none"]

    def transcribe(self, path):
        return self.run(["transcribe", str(path), *self.model_flags()]).rstrip("\n")

    def speak(self, text, prompt, max_text_characters=None):
        output = self.folder / "speech.wav"
        output.unlink(missing_ok=True)
        fast = [f"--{name.replace('_', '-')}={value}" for name, value in FAST_SYNTHESIS.items()]
        if max_text_characters is not None:
            fast.append(f"--max-text-characters={max_text_characters}")
        request = ["speak", text, "--prompt", str(prompt), "--prompt-text", PROMPT_TEXT, "-o", str(output)]
        try:
            self.run([*request, *fast, *self.model_flags()])
        except Refused:
            assert not output.exists(), "a refused request wrote no file"
            raise
        return soundfile.read(output, dtype="float32")[0]

    def correct(self, nbest):
        path = self.folder / "nbest.json"
        path.write_text(json.dumps(nbest))
        return self.run(["correct", str(path), *self.model_flags()]).rstrip("\n")

    def load(self, model, adapters="shipped", command="transcribe"):
        clip = self.folder / "clip.wav"
        soundfile.write(clip, noise_clip(0.3, 16000), 16000)
        flags = [] if adapters == "shipped" else ["--adapters", str(adapters)]
        arguments = [str(clip)] if command == "transcribe" else []
        return self.run([command, *arguments, "--model", str(model), *flags])


class DemoSurface:
    """The demo's three tabs through `gradio_client`. A file that does not exist cannot be uploaded:
    the demo's missing recording is no upload at all. What stops the demo before it serves (bad
    adapters, a damaged cache) is `unispeech demo` refusing to start."""

    def __init__(self, client, files, cli, monkeypatch):
        self.client, self.files, self.cli, self.monkeypatch = client, files, cli, monkeypatch

    def _upload(self, path):
        from gradio_client import handle_file

        return handle_file(path) if Path(path).exists() else None

    def _predict(self, api_name, *inputs):
        from gradio_client.exceptions import AppError

        try:
            return self.client.predict(*inputs, api_name=api_name)
        except AppError as error:
            message = error.message
            assert "/tmp" not in message, message
        self._serves(api_name)
        raise _refused(message)

    def _serves(self, api_name):
        """The same tab answers a good request after a refused one."""
        good = self.files["mono-8000"]
        if api_name == "/transcribe":
            *_, timing = self.client.predict(self._upload(good), 1, api_name=api_name)
            assert timing.startswith("0.80 s of audio transcribed")
        elif api_name == "/speak":
            *_, timing = self.client.predict(
                "hi", self._upload(good), PROMPT_TEXT, 1, 0.0, 1.0, 0, 0.0, api_name=api_name
            )
            assert "1 ODE steps" in timing
        else:
            _, timing = self.client.predict("a b\na c", None, api_name=api_name)
            assert timing.startswith("2 hypotheses corrected")

    def transcribe(self, path):
        return self._predict("/transcribe", self._upload(path), 1)[0]

    def speak(self, text, prompt, max_text_characters=None):
        assert max_text_characters in (None, TEXT_CAP), "the demo's cap is its settings'"
        path, _, _ = self._predict("/speak", text, self._upload(prompt), PROMPT_TEXT, 1, 0.0, 1.0, 0, 1.0)
        return soundfile.read(path, dtype="float32")[0]

    def correct(self, nbest):
        return self._predict("/correct", nbest, None)[0]

    def load(self, model, adapters="shipped"):
        launched = []
        self.monkeypatch.setattr(
            "unispeech.interfaces.demo.launch", lambda *args, **kwargs: launched.append(args)
        )
        try:
            self.cli.load(model, adapters, command="demo")
        except Refused:
            assert not launched, "the demo started serving"
            raise
        assert launched
        return launched[0][0]


# ----------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def speech(tiny_dir):
    return load(tiny_dir, adapters=None)


@pytest.fixture(scope="module")
def pipelines(tiny_dir):
    tasks = (SPEECH_RECOGNITION, TEXT_TO_AUDIO, NBEST_CORRECTION)
    return {task: pipeline(task, model=str(tiny_dir), adapter=None) for task in tasks}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Recordings by name: the bad ones, and good ones in odd formats."""
    folder = tmp_path_factory.mktemp("recordings")
    stereo = np.stack([speech_clip(1.0, 44100, seed=1), speech_clip(1.0, 44100, seed=2)], axis=1)
    t = np.arange(16000) / 16000
    recordings = {  # name: (samples, rate, subtype)
        "empty": (np.zeros(0, np.float32), 16000, "PCM_16"),
        "nan": (np.full(1600, np.nan, np.float32), 16000, "FLOAT"),  # float keeps NaN, as damage may
        "too-long": (noise_clip(6.0, 8000, seed=3), 8000, "PCM_16"),
        "stereo-44100": (stereo, 44100, "PCM_16"),
        "stereo-11025": (stereo[::4], 11025, "PCM_16"),
        "mono-8000": (speech_clip(0.8, 8000, seed=4), 8000, "PCM_16"),
        "white-noise": (np.clip(noise_clip(1.0, 16000, seed=5) * 5, -1, 1), 16000, "PCM_16"),
        "silence": (np.zeros(16000, np.float32), 16000, "PCM_16"),
        "clipped-square": (np.clip(2 * np.sign(np.sin(2 * np.pi * 220 * t)), -1, 1), 16000, "PCM_16"),
    }
    paths = {}
    for name, (samples, rate, subtype) in recordings.items():
        paths[name] = folder / f"{name}.wav"
        soundfile.write(paths[name], samples, rate, subtype=subtype)
    paths["corrupt"] = folder / "corrupt.wav"
    paths["corrupt"].write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt not really a wav file")
    paths["missing"] = folder / "missing.wav"
    return paths


@pytest.fixture(scope="module")
def client(speech):
    """A `gradio_client` of the demo served on 127.0.0.1 while this module runs."""
    pytest.importorskip("gradio", reason="the demo extra (gradio) is not installed")
    from gradio_client import Client

    from unispeech.interfaces.demo import DemoSettings, launch

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = DemoSettings(max_upload_mb=1.0, max_audio_seconds=MAX_AUDIO_SECONDS, max_text_chars=TEXT_CAP)
    demo = launch(speech, settings, port=port, block=False)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    demo.close()


@pytest.fixture
def surface(request, tiny_dir, tmp_path, capsys, monkeypatch, files):
    """The driver of the surface named by the test's parameter."""
    name = request.param
    cli = CliSurface(tiny_dir, tmp_path, capsys)
    if name == "api":
        return ApiSurface(request.getfixturevalue("speech"))
    if name == "pipeline":
        return PipelineSurface(request.getfixturevalue("pipelines"))
    if name == "cli":
        return cli
    return DemoSurface(request.getfixturevalue("client"), files, cli, monkeypatch)


def matrix(cases: dict, surfaces_of=lambda case: SURFACES) -> list:
    """One parameter set per (case, surface) the case applies to, with the id `<case>-<surface>`."""
    return [
        pytest.param(name, surface, id=f"{name}-{surface}")
        for name, case in cases.items()
        for surface in surfaces_of(case)
    ]


# ----------------------------------------------------------------------------------------------------
# Audio: to transcribe, and as the voice prompt to speak in

BAD_AUDIO = {  # name: (the message's pattern, the surfaces it applies to)
    "empty": (r"audio is empty \(0 samples\)", SURFACES),
    "nan": (r"audio contains 1600 NaN or infinite samples", SURFACES),
    "corrupt": (r"cannot read audio file \S*corrupt\.wav", SURFACES),
    "missing": (
        r"no such (audio file|voice prompt): \S*missing\.wav|^no (recording|voice prompt): upload",
        SURFACES,
    ),
    "too-long": (rf"lasts 6\.0 s, more than the {MAX_AUDIO_SECONDS:g} s allowed", ("demo",)),
}
GOOD_AUDIO = ("stereo-44100", "stereo-11025", "mono-8000")  # speech: the tiny model writes something
NONSPEECH = ("white-noise", "silence", "clipped-square")


@pytest.mark.parametrize(("name", "surface"), matrix(BAD_AUDIO, lambda case: case[1]), indirect=["surface"])
def test_bad_audio_to_transcribe_is_refused(surface, files, name):
    with pytest.raises(Refused, match=BAD_AUDIO[name][0]):
        surface.transcribe(files[name])


@pytest.mark.parametrize(("name", "surface"), matrix(BAD_AUDIO, lambda case: case[1]), indirect=["surface"])
def test_a_bad_voice_prompt_is_refused(surface, files, name):
    with pytest.raises(Refused, match=BAD_AUDIO[name][0]):
        surface.speak("hello there", files[name])


@pytest.mark.parametrize(("name", "surface"), matrix(dict.fromkeys(GOOD_AUDIO)), indirect=["surface"])
def test_stereo_and_odd_rates_are_transcribed(surface, files, name):
    assert surface.transcribe(files[name]) != ""


@pytest.mark.parametrize(("name", "surface"), matrix(dict.fromkeys(NONSPEECH)), indirect=["surface"])
def test_nonspeech_transcribes_to_nothing(surface, files, name):
    """The untrained tiny model writes bytes for anything it decodes (the test above): "" here
    means the speech presence check kept the decoder from hearing it."""
    assert surface.transcribe(files[name]) == ""


@pytest.mark.parametrize(("name", "surface"), matrix(dict.fromkeys(GOOD_AUDIO)), indirect=["surface"])
def test_stereo_and_odd_rates_are_voice_prompts(surface, files, name):
    audio = surface.speak("hello there", files[name])
    assert audio.ndim == 1 and len(audio) > 0 and np.isfinite(audio).all()


ARRAYS = {  # name: (samples at 11 025 Hz, the message's pattern; None: it works)
    "empty": (np.zeros(0, np.float32), r"audio is empty \(0 samples\)"),
    "nan": (np.full(1600, np.nan, np.float32), r"audio contains 1600 NaN or infinite samples"),
    "three-dimensional": (np.zeros((2, 2, 800), np.float32), r"must be 1-D or 2-D .*got shape \(2, 2, 800\)"),
    "stereo-samples-first": (np.stack([noise_clip(0.5, 11025, seed=s) for s in (1, 2)], axis=1), None),
    "stereo-channels-first": (np.stack([noise_clip(0.5, 11025, seed=s) for s in (1, 2)]), None),
}


@pytest.mark.parametrize(
    ("name", "surface"), matrix(ARRAYS, lambda case: ARRAY_SURFACES), indirect=["surface"]
)
def test_audio_arrays(surface, name):
    samples, message = ARRAYS[name]
    if message is None:
        assert isinstance(surface.transcribe(samples, sampling_rate=11025), str)
    else:
        with pytest.raises(Refused, match=message):
            surface.transcribe(samples, sampling_rate=11025)


# ----------------------------------------------------------------------------------------------------
# Text to speak

NOTHING_TO_SPEAK = (
    r"has no letter or digit \(only symbols such as emoji, punctuation or control characters\): "
    "nothing to speak"
)
BAD_TEXT = {  # name: (text, the message's pattern, the surfaces it applies to)
    "empty": ("", r"^text '' is empty or whitespace: nothing to speak$|^the text is empty$", SURFACES),
    "whitespace": (" \t\n ", r"is empty or whitespace: nothing to speak$|^the text is empty$", SURFACES),
    "emoji-only": ("🎉🎉", rf"^text '🎉🎉' {NOTHING_TO_SPEAK}$", SURFACES),
    "control-characters": ("\x07\x1b\x7f", rf"^text '\\x07\\x1b\\x7f' {NOTHING_TO_SPEAK}$", SURFACES),
    "over-the-cap": (
        "This is far too long to say.",
        rf"^the text has 28 characters, more than "
        rf"(max_text_characters={TEXT_CAP}: split it|the {TEXT_CAP} allowed)",
        SURFACES,
    ),
}


@pytest.mark.parametrize(("name", "surface"), matrix(BAD_TEXT, lambda case: case[2]), indirect=["surface"])
def test_text_with_nothing_to_speak_or_too_much_is_refused(surface, files, name):
    text, message, _ = BAD_TEXT[name]
    cap = TEXT_CAP if name == "over-the-cap" else None
    with pytest.raises(Refused, match=message):
        surface.speak(text, files["mono-8000"], max_text_characters=cap)


# ----------------------------------------------------------------------------------------------------
# N-best lists to correct

TAKES_STRINGS = r"N-best list .*list of strings.*, got "
BAD_NBEST = {  # name: (the N-best input, the message's pattern, the surfaces it applies to)
    # the demo's box takes text, one hypothesis a line: only "no hypothesis" can go wrong there
    "a-number": (42, TAKES_STRINGS + r".*42", ("api", "pipeline", "cli")),
    "a-string": ("helo world", TAKES_STRINGS + r".*'helo world'", ("api", "pipeline", "cli")),
    "empty-list": ([], r"N-best list is empty|^no N-best lists given$", ("api", "pipeline", "cli")),
    "no-lines": (" \n  \n", r"^the N-best list is empty$", ("demo",)),
    "empty-input": ({"input": []}, r"^the N-best list is empty", ("pipeline", "cli")),
    "numbers": ([1, 2], TAKES_STRINGS, ("api", "pipeline", "cli")),
    "a-number-inside": ([["a b", 2]], TAKES_STRINGS, ("api", "pipeline", "cli")),
}


@pytest.mark.parametrize(("name", "surface"), matrix(BAD_NBEST, lambda case: case[2]), indirect=["surface"])
def test_bad_nbest_lists_are_refused(surface, name):
    nbest, message, _ = BAD_NBEST[name]
    with pytest.raises(Refused, match=message):
        surface.correct(nbest)


# ----------------------------------------------------------------------------------------------------
# Task adapters


@pytest.fixture(scope="module")
def trained_adapters(tmp_path_factory):
    """An ASR and a TTS adapter of the tiny base, saved once."""
    folder = tmp_path_factory.mktemp("adapters")
    for task in ("asr", "tts"):
        model, _ = tiny_model()
        add_task_adapter(model, task)
        save_task_adapter(model, task, folder / task)
    return folder


def _replace(path: Path, content: bytes) -> None:
    path.write_bytes(content)


BAD_ADAPTERS = {  # name: (how asr/ is made from the saved adapters, the message's pattern)
    "tts-adapter-as-asr": (
        lambda saved, asr: shutil.copytree(saved / "tts", asr),
        r"^the adapter at \S+asr holds task 'tts', not 'asr': give a folder that holds task 'asr'$",
    ),
    "damaged-lora": (
        lambda saved, asr: _replace(
            shutil.copytree(saved / "asr", asr) / "adapter_model.safetensors", b"x" * 64
        ),
        r"cannot read \S+adapter_model\.safetensors: .*the adapter is damaged or not safetensors",
    ),
    "truncated-task-modules": (
        lambda saved, asr: _replace(
            shutil.copytree(saved / "asr", asr) / "task_modules.safetensors",
            (saved / "asr" / "task_modules.safetensors").read_bytes()[:1000],
        ),
        r"cannot read \S+task_modules\.safetensors: .*the adapter is damaged or not safetensors",
    ),
    "damaged-metadata": (
        lambda saved, asr: _replace(
            shutil.copytree(saved / "asr", asr) / "unispeech_adapter.json", b"{not json"
        ),
        r"cannot read \S+unispeech_adapter\.json: .*the adapter is damaged, save or copy it again",
    ),
}


@pytest.mark.parametrize(("name", "surface"), matrix(BAD_ADAPTERS), indirect=["surface"])
def test_a_wrong_or_damaged_adapter_is_refused(surface, trained_adapters, tiny_dir, tmp_path, name):
    make, message = BAD_ADAPTERS[name]
    make(trained_adapters, tmp_path / "adapters" / "asr")
    with pytest.raises(Refused, match=message):
        surface.load(tiny_dir, tmp_path / "adapters")


# ----------------------------------------------------------------------------------------------------
# The weight cache


@pytest.fixture
def cache(wheels, tiny_dir, tmp_path, monkeypatch):  # noqa: F811 - wheels is the imported fixture
    """The tiny model as the cached base of test_weights_cache's fake model `fake`, loaded once (so
    that its files' records say they matched), with no shipped adapters."""
    monkeypatch.setenv(weight_cache.CACHE_ENVIRONMENT_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.setenv(weight_cache.ADAPTERS_ENVIRONMENT_VARIABLE, str(tmp_path / "no-adapters"))
    monkeypatch.setattr(weight_cache, "RACY_SECONDS", 0)  # record files written a moment ago
    folder = weight_cache.fetch(
        "fake",
        wheels_dir=wheels,
        convert=lambda files, staging: shutil.copytree(tiny_dir, staging / weight_cache.MODEL_DIR),
    )
    assert load("fake").tasks == [] and (folder / weight_cache.VERIFIED_NAME).is_file()
    return folder


def _damage_keeping_the_size(path: Path) -> None:
    """Random bytes over 4 KiB in the middle of the file, among the tensors: it still loads."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = np.random.default_rng(0).bytes(4096)
    recorded = path.stat().st_mtime_ns
    path.write_bytes(bytes(data))
    os.utime(path, ns=(recorded + 1, recorded + 1))  # a write the clock's tick could hide


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGED_WEIGHTS = {  # name: (the damage, the message's pattern)
    "same-size": (_damage_keeping_the_size, r"model/model\.safetensors does not match its sha256"),
    "truncated": (_truncate, r"model/model\.safetensors has \d+ bytes, expected \d+"),
}
WEIGHTS_PARAMETERS = [
    parameter
    if parameter.id != "truncated-pipeline"
    else pytest.param(
        *parameter.values,
        id=parameter.id,
        marks=pytest.mark.xfail(
            strict=True,
            raises=SafetensorError,
            reason="transformers' pipeline() reads the model before our pipeline class can verify the "
            "cache: a file damaged where safetensors reads its header fails there with SafetensorError",
        ),
    )
    for parameter in matrix(DAMAGED_WEIGHTS)
]


@pytest.mark.parametrize(("name", "surface"), WEIGHTS_PARAMETERS, indirect=["surface"])
def test_damaged_weights_are_refused_at_load(surface, cache, name):
    damage, problem = DAMAGED_WEIGHTS[name]
    damage(cache / weight_cache.MODEL_DIR / "model.safetensors")
    with pytest.raises(
        Refused, match=rf"^the cache at \S+fake is damaged \({problem}\): .*fetch fake --force`$"
    ):
        surface.load("fake")
