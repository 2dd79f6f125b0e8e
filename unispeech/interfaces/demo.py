"""The Gradio demo: one page, three tabs (Transcribe, Speak, Correct) over one loaded `Unispeech`.

`build_demo(speech, settings)` makes the app and `launch(...)` serves it (`unispeech demo` and
`demo/app.py` call it); nothing is built at import. Every request is checked before the model runs:
an upload must be readable, finite, not silent and at most `max_audio_seconds` long (the length is
read from the file's header, before decoding it); text at most `max_text_chars`. What a user did
wrong comes back as a message in the page (`gr.Error`, as plain text: `page_text`), never a
traceback, and one bad request never stops the server. Requests wait in a queue of at most
`queue_size`; beyond that they are refused. The model is shared (and switching its task adapter
is global state), so calls into it take turns.

Shapes: `T` samples, `M` mel bins, `F` frames.
"""

from __future__ import annotations

import functools
import html
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import soundfile

from unispeech.api import Unispeech
from unispeech.audio.features import WHISPER_SAMPLE_RATE, AudioError, MelSettings, load_audio, vocoder_log_mel
from unispeech.model.sequences import TASKS
from unispeech.tasks.decoding import DecodingOptions
from unispeech.tasks.synthesis import SynthesisOptions
from unispeech.tasks.transcription import TranscriptionOptions
from unispeech.weights.cache import ADAPTER_LANGUAGE

logger = logging.getLogger(__name__)

BYTES_PER_MB = 2**20
SILENCE_PEAK = TranscriptionOptions().silence_peak  # quieter recordings hold nothing to hear
MAX_NBEST = 8  # the largest N-best list the Transcribe tab offers
MAX_HYPOTHESES = 20  # the longest N-best list the Correct tab takes
# What HTML reads as markup in text: `<` before a tag name, `/`, `!` or `?`; `&` before a reference.
MARKUP_START = re.compile(r"<(?=[A-Za-z/!?])|&(?=[#A-Za-z0-9])")
MEL_ROW_HEIGHT = 3  # pixel rows per mel bin in the spectrogram picture
PALETTE = np.array(  # dark blue → purple → orange → pale yellow, low → high energy
    [[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]],
    dtype=np.float32,
)


@dataclass(frozen=True)
class DemoSettings:
    """What the server accepts: `queue_size` requests waiting (more are refused), `concurrency`
    running at once, uploads of at most `max_upload_mb` MB (2^20 bytes) and `max_audio_seconds`,
    texts of at most `max_text_chars` characters."""

    queue_size: int = 16
    concurrency: int = 1
    max_upload_mb: float = 20.0
    max_audio_seconds: float = 60.0
    max_text_chars: int = 500

    def __post_init__(self) -> None:
        if self.queue_size < 1 or self.concurrency < 1:
            raise ValueError(
                f"queue_size and concurrency must be at least 1, got {self.queue_size} and {self.concurrency}"
            )
        for name in ("max_upload_mb", "max_audio_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        if self.max_text_chars < 1:
            raise ValueError(f"max_text_chars must be at least 1, got {self.max_text_chars}")


# ----------------------------------------------------------------------------------------------------
# Checks


def read_upload(
    path: str | Path | None, sample_rate: int, settings: DemoSettings, what: str, silence_ok: bool = False
) -> np.ndarray:
    """An uploaded or recorded file as mono float32 `(T,)` at `sample_rate`, or a ValueError that
    says what is wrong with it: missing, too big, too long, unreadable, empty, NaN, or silent (unless
    `silence_ok`: a silent recording transcribes to nothing, while a silent voice prompt has no voice)."""
    if path is None:
        raise ValueError(f"no {what}: upload a file or record one")
    path = Path(path)
    size = path.stat().st_size
    if size > settings.max_upload_mb * BYTES_PER_MB:
        raise ValueError(
            f"the {what} is {size / BYTES_PER_MB:.1f} MB, more than the {settings.max_upload_mb:g} MB allowed"
        )
    try:
        seconds = soundfile.info(path).duration  # from the header: a long file is not decoded at all
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        seconds = None  # unreadable: load_audio says why
    if seconds is not None and seconds > settings.max_audio_seconds:
        raise ValueError(
            f"the {what} lasts {seconds:.1f} s, more than the {settings.max_audio_seconds:g} s allowed"
        )
    try:
        audio = load_audio(path, sample_rate)
    except AudioError as error:  # the server's temporary path means nothing to the user
        raise AudioError(str(error).replace(str(path), path.name)) from None
    if len(audio) > settings.max_audio_seconds * sample_rate:  # a header that lied
        raise ValueError(f"the {what} is longer than the {settings.max_audio_seconds:g} s allowed")
    if not silence_ok and np.abs(audio).max() < SILENCE_PEAK:
        raise AudioError(f"the {what} is silent (peak below {SILENCE_PEAK:g}): there is nothing to hear")
    return audio


def check_text(text: str | None, settings: DemoSettings, what: str = "text") -> str:
    """`text` stripped, or a ValueError when it is empty or longer than `max_text_chars`."""
    text = (text or "").strip()
    if not text:
        raise ValueError(f"the {what} is empty")
    if len(text) > settings.max_text_chars:
        raise ValueError(
            f"the {what} has {len(text)} characters, more than the {settings.max_text_chars} allowed"
        )
    return text


def split_hypotheses(text: str | None, settings: DemoSettings) -> list[str]:
    """One hypothesis per non-empty line, best first."""
    hypotheses = [line.strip() for line in check_text(text, settings, "N-best list").splitlines()]
    hypotheses = [line for line in hypotheses if line]
    if len(hypotheses) > MAX_HYPOTHESES:
        raise ValueError(f"{len(hypotheses)} hypotheses given, at most {MAX_HYPOTHESES} are taken")
    return hypotheses


def mel_picture(audio: np.ndarray, settings: MelSettings = MelSettings()) -> np.ndarray:
    """The vocoder log-mel of `(T,)` audio at `settings.sample_rate` as an RGB picture
    `(M · MEL_ROW_HEIGHT, F, 3)` uint8, low frequencies at the bottom."""
    log_mel = vocoder_log_mel(audio, settings).numpy()  # (M, F)
    low, high = log_mel.min(), log_mel.max()
    level = (log_mel - low) / (high - low) if high > low else np.zeros_like(log_mel)
    anchors = np.linspace(0, 1, len(PALETTE))
    rgb = np.stack([np.interp(level, anchors, PALETTE[:, c]) for c in range(3)], axis=-1)  # (M, F, 3)
    return np.repeat(rgb[::-1], MEL_ROW_HEIGHT, axis=0).round().astype(np.uint8)


def _to_int16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1, 1) * np.iinfo(np.int16).max).astype(np.int16)


def page_text(message: str) -> str:
    """`message` as HTML that the page shows as written, changed as little as can be: gradio
    renders an error as HTML, but gradio_client users read the same string, so only a `<` that
    would open markup and an `&` that would start a character reference are escaped (quotes and
    everything else arrive verbatim)."""
    return MARKUP_START.sub(lambda match: html.escape(match.group()), message)


def _shown(handler: Callable) -> Callable:
    """`handler` with every error turned into a message in the page: the user's own mistakes with
    their reason, anything else as an internal error (logged with its traceback)."""

    @functools.wraps(handler)
    def wrapper(*args):
        try:
            return handler(*args)
        except gr.Error:
            raise
        except (ValueError, OSError) as error:  # AudioError is a ValueError
            logger.info("refused a request: %s", error)
            raise gr.Error(page_text(str(error)), print_exception=False) from None
        except Exception as error:
            logger.exception("a demo request failed")
            raise gr.Error(
                f"internal error ({type(error).__name__}): the server log has the details",
                print_exception=False,
            ) from None

    return wrapper


# ----------------------------------------------------------------------------------------------------
# The app


class DemoHandlers:
    """The three tabs' functions, each checking its inputs, then running the shared model."""

    def __init__(self, speech: Unispeech, settings: DemoSettings):
        self.speech, self.settings = speech, settings
        self.lock = threading.Lock()  # one model, one active adapter: calls take turns

    def transcribe(
        self, path: str | None, nbest: float, language: str = ADAPTER_LANGUAGE
    ) -> tuple[str, list[list], str]:
        audio = read_upload(path, WHISPER_SAMPLE_RATE, self.settings, "recording", silence_ok=True)
        options = TranscriptionOptions(
            decoding=DecodingOptions.for_n_best(int(nbest)), language=self.check_language(language)
        )
        start = time.perf_counter()
        with self.lock:
            result = self.speech.transcribe(audio, options, sampling_rate=WHISPER_SAMPLE_RATE)
        elapsed = time.perf_counter() - start
        rows = [[rank, hyp.text, round(hyp.score, 4)] for rank, hyp in enumerate(result.hypotheses, 1)]
        seconds = len(audio) / WHISPER_SAMPLE_RATE
        timing = (
            f"{seconds:.2f} s of audio transcribed in {elapsed:.2f} s ({elapsed / seconds:.2f}× real time)"
        )
        if len(result.chunks) > 1:
            timing += f"; {len(result.chunks)} windows (an N-best list is kept for one-window clips only)"
        if not any(chunk.hypotheses for chunk in result.chunks):
            timing += "; no speech heard"
        return result.text, rows, timing

    def speak(
        self,
        text: str | None,
        prompt: str | None,
        prompt_text: str | None,
        steps: float,
        guidance_strength: float,
        speed: float,
        seed: float,
        start_time: float,
        language: str = ADAPTER_LANGUAGE,
    ) -> tuple[tuple[int, np.ndarray], np.ndarray, str]:
        text = check_text(text, self.settings)
        rate = self.speech.sample_rate  # the model's mel rate, which its vocoder reads
        prompt_audio = read_upload(prompt, rate, self.settings, "voice prompt")
        prompt_text = (prompt_text or "").strip() or None
        if prompt_text is not None:
            check_text(prompt_text, self.settings, "prompt transcript")
        options = SynthesisOptions(
            steps=int(steps),
            guidance_strength=float(guidance_strength),
            speed=float(speed),
            seed=int(seed),
            start_time=float(start_time),
            language=self.check_language(language),
        )
        start = time.perf_counter()
        with self.lock:
            audio = self.speech.speak(text, prompt_audio, prompt_text, options, prompt_sampling_rate=rate)
        elapsed = time.perf_counter() - start
        seconds = len(audio) / self.speech.sample_rate
        timing = (
            f"{seconds:.2f} s of speech made in {elapsed:.2f} s ({elapsed / seconds:.2f}× real time, "
            + (f"{options.steps} ODE steps)" if options.start_time < 1 else "the phoneme prior, no ODE step)")
        )
        picture = mel_picture(audio, self.speech.model.config.mel_settings)
        return (self.speech.sample_rate, _to_int16(audio)), picture, timing

    def check_language(self, language: str | None) -> str:
        """The page's language choice, refused unless the loaded adapters serve it (a client can
        send any string)."""
        if language not in self.speech.languages:
            raise ValueError(
                f"no adapters for language {language!r}: this server has {', '.join(self.speech.languages)}"
            )
        return language

    def correct(self, nbest: str | None, path: str | None) -> tuple[str, str]:
        hypotheses = split_hypotheses(nbest, self.settings)
        audio = None if path is None else read_upload(path, WHISPER_SAMPLE_RATE, self.settings, "recording")
        start = time.perf_counter()
        with self.lock:
            corrected = self.speech.correct(hypotheses, audio, sampling_rate=WHISPER_SAMPLE_RATE)
        elapsed = time.perf_counter() - start
        listened = " while listening to the recording" if audio is not None else ""
        return corrected, f"{len(hypotheses)} hypotheses corrected{listened} in {elapsed:.2f} s"


def build_demo(
    speech: Unispeech, settings: DemoSettings = DemoSettings(), language: str = ADAPTER_LANGUAGE
) -> gr.Blocks:
    """The app: three tabs over `speech`, queued as `settings` says, Transcribe and Speak in
    `language` until the user picks another of `speech.languages`. Serve it with `launch`."""
    handlers = DemoHandlers(speech, settings)
    handlers.check_language(language)  # a language without adapters fails before the page is built
    missing = [task for task in TASKS if task not in speech.tasks]
    with gr.Blocks(title="unispeech", analytics_enabled=False) as demo:
        gr.Markdown(
            "# unispeech\nOne LLM backbone that listens, speaks and corrects, each task a LoRA adapter. "
            f"Uploads up to {settings.max_upload_mb:g} MB and {settings.max_audio_seconds:g} s, "
            f"text up to {settings.max_text_chars} characters."
        )
        if missing:
            gr.Markdown(
                f"**No adapter for {', '.join(missing)}**: the base model runs in its place, and its "
                "output for those tasks is not meaningful."
            )
        with gr.Tab("Transcribe"):
            audio_in = gr.Audio(
                sources=["upload", "microphone"],
                type="filepath",
                format=None,
                label="Recording",
                elem_id="transcribe-audio",
            )
            with gr.Row():
                nbest = gr.Slider(1, MAX_NBEST, value=1, step=1, label="N-best (beam search when > 1)")
                transcribe_language = _language_choice(speech, language, "transcribe-language")
            transcribe_button = gr.Button("Transcribe", variant="primary", elem_id="transcribe-button")
            text_out = gr.Textbox(label="Transcript", interactive=False, elem_id="transcribe-text")
            nbest_out = gr.Dataframe(
                headers=["rank", "text", "score"], label="N-best list", interactive=False
            )
            transcribe_timing = gr.Markdown(elem_id="transcribe-timing")
        with gr.Tab("Speak"):
            speak_text = gr.Textbox(
                label="Text to say", lines=3, max_length=settings.max_text_chars, elem_id="speak-text"
            )
            prompt_in = gr.Audio(
                sources=["upload", "microphone"],
                type="filepath",
                format=None,
                label="Voice prompt",
                elem_id="speak-prompt",
            )
            prompt_text = gr.Textbox(
                label="What the prompt says (optional: transcribed if empty)", elem_id="speak-prompt-text"
            )
            speak_language = _language_choice(speech, language, "speak-language")
            defaults = SynthesisOptions()
            with gr.Row():
                steps = gr.Slider(1, 64, value=defaults.steps, step=1, label="Steps (NFE)")
                guidance = gr.Slider(
                    0, 5, value=defaults.guidance_strength, step=0.1, label="Guidance strength (CFG)"
                )
                speed = gr.Slider(0.5, 2, value=defaults.speed, step=0.05, label="Speed")
                seed = gr.Number(value=defaults.seed, precision=0, minimum=0, label="Seed")
                start_time = gr.Slider(
                    0,
                    1,
                    value=defaults.start_time,
                    step=0.05,
                    label="Start time (1: the phoneme prior, no steps)",
                )
            speak_button = gr.Button("Speak", variant="primary", elem_id="speak-button")
            audio_out = gr.Audio(type="numpy", format="wav", label="Speech", interactive=False)
            mel_out = gr.Image(type="numpy", format="png", label="Mel spectrogram", interactive=False)
            speak_timing = gr.Markdown()
        with gr.Tab("Correct"):
            hypotheses = gr.Textbox(label="N-best hypotheses, one per line, best first", lines=5)
            correct_audio = gr.Audio(
                sources=["upload", "microphone"],
                type="filepath",
                format=None,
                label="Recording (optional: lets the model listen)",
            )
            correct_button = gr.Button("Correct", variant="primary")
            corrected_out = gr.Textbox(label="Corrected transcript", interactive=False)
            correct_timing = gr.Markdown()

        shared = {"concurrency_id": "model", "concurrency_limit": settings.concurrency}
        transcribe_button.click(
            _shown(handlers.transcribe),
            [audio_in, nbest, transcribe_language],
            [text_out, nbest_out, transcribe_timing],
            api_name="transcribe",
            **shared,
        )
        speak_button.click(
            _shown(handlers.speak),
            [speak_text, prompt_in, prompt_text, steps, guidance, speed, seed, start_time, speak_language],
            [audio_out, mel_out, speak_timing],
            api_name="speak",
            **shared,
        )
        correct_button.click(
            _shown(handlers.correct),
            [hypotheses, correct_audio],
            [corrected_out, correct_timing],
            api_name="correct",
            **shared,
        )
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
    return demo


def _language_choice(speech: Unispeech, language: str, elem_id: str) -> gr.Dropdown:
    """Which language a tab listens or speaks in: those the loaded adapters serve (its phonemes and
    its adapter; `Unispeech.languages`)."""
    return gr.Dropdown(speech.languages, value=language, label="Language", elem_id=elem_id)


def launch(
    speech: Unispeech,
    settings: DemoSettings = DemoSettings(),
    host: str = "127.0.0.1",
    port: int = 7860,
    block: bool = True,
    language: str = ADAPTER_LANGUAGE,
) -> gr.Blocks:
    """Build the demo (`build_demo`) and serve it at http://host:port; with `block=False` return at
    once (the caller `close()`s the returned app)."""
    demo = build_demo(speech, settings, language)
    demo.launch(
        server_name=host,
        server_port=port,
        max_file_size=int(settings.max_upload_mb * BYTES_PER_MB),
        prevent_thread_lock=not block,
        quiet=not block,
    )
    return demo
