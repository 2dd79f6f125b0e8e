"""unispeech: one LLM backbone for speech recognition, zero-shot speech synthesis and N-best correction.

The public names below load lazily, so `import unispeech` (and the CLI's `--help`) stays fast and
does nothing but define them.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("unispeech")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

_EXPORTS = {
    "load": "unispeech.api",
    "Unispeech": "unispeech.api",
    "TranscriptionOptions": "unispeech.tasks.transcription",
    "SynthesisOptions": "unispeech.tasks.synthesis",
    "CorrectionOptions": "unispeech.tasks.correction",
    "DecodingOptions": "unispeech.tasks.decoding",
    "UnispeechLMConfig": "unispeech.model.configuration",
    "WhisperEncoderConfig": "unispeech.model.configuration",
    "UnispeechLMModel": "unispeech.model.modeling",
    "UnispeechLMProcessor": "unispeech.model.processor",
    "AsrSample": "unispeech.model.processor",
    "TtsSample": "unispeech.model.processor",
    "AudioError": "unispeech.audio.features",
    "load_audio": "unispeech.audio.features",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'unispeech' has no attribute {name!r}")
