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
    "TranscriptionOptions": "unispeech.transcription",
    "SynthesisOptions": "unispeech.synthesis",
    "CorrectionOptions": "unispeech.correction",
    "DecodingOptions": "unispeech.decoding",
    "UnispeechLMConfig": "unispeech.configuration",
    "WhisperEncoderConfig": "unispeech.configuration",
    "UnispeechLMModel": "unispeech.modeling",
    "UnispeechLMProcessor": "unispeech.processor",
    "AsrSample": "unispeech.processor",
    "TtsSample": "unispeech.processor",
    "AudioError": "unispeech.audio",
    "load_audio": "unispeech.audio",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'unispeech' has no attribute {name!r}")
