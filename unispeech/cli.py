"""The `unispeech` command: one entry point, one subcommand per job.

Each subcommand is a thin layer over the library: it parses flags, calls one function, prints the
result, and turns the errors users cause (bad audio, bad text, bad settings) into one line on
stderr and a non-zero exit code instead of a traceback.

    unispeech check [--model smol|tiny]   build the model and run one mixed ASR + TTS training step
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

EXIT_USER_ERROR = 2  # argparse's own code for bad usage


def _check(args: argparse.Namespace) -> None:
    """Build the model with random weights and run one ASR + TTS forward and backward pass."""
    import numpy as np
    import torch

    from unispeech.configuration import UnispeechLMConfig
    from unispeech.modeling import UnispeechLMModel
    from unispeech.processor import AsrSample, TtsSample, UnispeechLMProcessor
    from unispeech.testing import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    config = UnispeechLMConfig() if args.model == "smol" else UnispeechLMConfig.tiny()
    config.text_config.vocab_size = max(config.text_config.vocab_size, len(tokenizer))
    torch.manual_seed(args.seed)
    model = UnispeechLMModel(config).train()
    processor = UnispeechLMProcessor(tokenizer, config)

    seconds = args.seconds
    clock = np.arange(int(seconds * 16000)) / 16000
    chirp = 0.3 * np.sin(2 * np.pi * (200 + 400 * clock) * clock).astype(np.float32)
    batch = processor(
        [
            AsrSample(chirp, "a rising tone", sampling_rate=16000),
            TtsSample(chirp, "a rising tone", sampling_rate=16000),
        ]
    )
    start = time.perf_counter()
    output = model(**batch, generator=torch.Generator().manual_seed(args.seed))
    output.loss.backward()
    elapsed = time.perf_counter() - start

    parameters = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(
        f"model          {args.model} (random weights), {parameters / 1e6:.1f} M parameters, "
        f"{trainable / 1e6:.1f} M trainable (the speech encoder is frozen)"
    )
    print(
        f"batch          1 ASR + 1 TTS sample of {seconds:g} s: {batch['input_ids'].shape[1]} positions, "
        f"{int(batch['speech_mask'].sum())} speech embeddings, {int(batch['mel_mask'].sum())} mel patches"
    )
    print(f"losses         ASR {output.asr_loss.item():.3f}  TTS {output.tts_loss.item():.3f}")
    print(f"forward+backward {elapsed:.2f} s on {torch.get_num_threads()} CPU threads")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unispeech", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and details")
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="build the model and run one ASR + TTS training step")
    check.add_argument("--model", choices=["smol", "tiny"], default="smol", help="architecture to build")
    check.add_argument("--seconds", type=float, default=2.0, help="length of the generated test clip")
    check.add_argument("--seed", type=int, default=0)
    check.set_defaults(run=_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    try:
        args.run(args)
    except (ValueError, OSError) as error:  # AudioError is a ValueError
        print(f"unispeech {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
