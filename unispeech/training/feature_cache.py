"""The on-disk cache of frozen-encoder outputs: each training clip through Whisper once, not per epoch.

The speech encoder is frozen, so a clip's encoder states never change during training; encoding
them again at every epoch is most of an ASR step's cost. `FeatureCache` stores each clip's `(T, E)`
states as one safetensors file (float16: half the disk, and far below the encoder's own fp16
training precision), under a folder named by a fingerprint of the encoder (its weights and its
context mode), keyed by the audio file's path, size and modification time. A changed file or a
different encoder therefore never reads stale states. Files are written atomically, so a killed
run leaves no half-written entry; `fill` encodes what is missing, in length-sorted batches (the
encoder's key mask makes a batched clip equal the clip alone), and shows progress.

Shapes: `T` encoder frames, `E` encoder width, `M` mel bins, `F` mel frames.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from unispeech.audio.features import WHISPER_SAMPLE_RATE
from unispeech.data.manifest import audio_duration
from unispeech.model.encoder import EncodedSpeech, SpeechEncoder
from unispeech.model.lengths import whisper_mel_frames
from unispeech.model.processor import UnispeechLMProcessor
from unispeech.training.buckets import BucketSettings, plan_batches

STATES_KEY = "states"
STORAGE_DTYPE = torch.float16
FINGERPRINT_CHARS = 16  # of the sha256: names the folder of one encoder's entries
ENCODE_BATCH_FRAMES = 24_000  # padded Whisper mel frames (10 ms each) per encoder batch while filling


def encoder_fingerprint(encoder: SpeechEncoder) -> str:
    """A short hash of the encoder's weights and context mode: entries of another encoder never match."""
    digest = hashlib.sha256(json.dumps({"full_context": encoder.full_context}).encode())
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:FINGERPRINT_CHARS]


class FeatureCache:
    def __init__(self, root: str | Path, encoder: SpeechEncoder):
        self.encoder = encoder
        self.folder = Path(root) / encoder_fingerprint(encoder)

    def path(self, audio: str | Path) -> Path:
        """The entry of an audio file: named by its resolved path, size and modification time."""
        audio = Path(audio).resolve()
        status = audio.stat()
        key = hashlib.sha256(f"{audio}\0{status.st_size}\0{status.st_mtime_ns}".encode()).hexdigest()
        return self.folder / key[:2] / f"{key}.safetensors"

    def get(self, audio: str | Path) -> EncodedSpeech | None:
        """The cached states of `audio` (float32), or `None` when absent or unreadable."""
        entry = self.path(audio)
        try:
            states = load_file(entry)[STATES_KEY]
        except (FileNotFoundError, SafetensorError, KeyError):
            return None
        return EncodedSpeech(states.float())

    def put(self, audio: str | Path, states: torch.Tensor) -> None:
        """Store `(T, E)` states for `audio`, atomically."""
        entry = self.path(audio)
        entry.parent.mkdir(parents=True, exist_ok=True)
        descriptor, staging = tempfile.mkstemp(dir=entry.parent, prefix=".writing-", suffix=".safetensors")
        os.close(descriptor)
        try:
            save_file({STATES_KEY: states.detach().to(STORAGE_DTYPE).cpu().contiguous()}, staging)
            os.replace(staging, entry)
        finally:
            Path(staging).unlink(missing_ok=True)

    @torch.no_grad()
    def fill(
        self, audio_files: Sequence[str | Path], processor: UnispeechLMProcessor, show_progress: bool = True
    ) -> int:
        """Encode and store every file that has no entry yet; returns how many were encoded."""
        missing = sorted({str(Path(file)) for file in audio_files if self.get(file) is None})
        if not missing:
            return 0
        # plan batches from the files' headers, then make each batch's log-mel only when it is
        # encoded: a large corpus's spectrograms would not fit in memory together
        frames = [whisper_mel_frames(round(audio_duration(file) * WHISPER_SAMPLE_RATE)) for file in missing]
        if self.encoder.full_context:
            frames = [self.encoder.max_frames] * len(frames)
        batches = plan_batches(
            frames,
            BucketSettings(max_positions=ENCODE_BATCH_FRAMES, max_samples=len(frames), window=len(frames)),
            seed=0,
        )
        self.encoder.eval()
        with tqdm(total=len(missing), desc="encoder cache", unit="clip", disable=not show_progress) as bar:
            for batch in batches:
                features = [processor.speech_features(missing[index], None) for index in batch]
                padded = torch.nn.utils.rnn.pad_sequence([mel.T for mel, _ in features], batch_first=True)
                lengths = torch.tensor([real for _, real in features])
                device = next(self.encoder.parameters()).device
                states, state_lengths = self.encoder(padded.transpose(1, 2).to(device), lengths.to(device))
                for row, index in enumerate(batch):
                    self.put(missing[index], states[row, : state_lengths[row]])
                bar.update(len(batch))
        return len(missing)
