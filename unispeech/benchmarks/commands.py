"""The `unispeech eval asr|tts|durations|ger|speed` commands: each one's flags and its assembly.

Each command reads its data first (a bad manifest or N-best file fails before any model loads),
loads the systems it scores, runs its benchmark and writes `report.md`, `report.json` and
`report.png` to `--out`, with the command line that reproduces the run, every flag spelled out,
defaults included. The heavy modules are imported by the command that runs, never when the parser
is built.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from unispeech.interfaces.flags import (
    CTC_FIELDS,
    DECODING,
    SYNTHESIS,
    SYNTHESIS_FLAGS,
    adapters_choice,
    add_ctc_flags,
    add_model_flags,
    add_option_flag,
    add_option_flags,
    given,
    load_speech,
    spelled,
)

ASR_OPTIONS = "unispeech.benchmarks.asr.AsrBenchmarkOptions"
GER_OPTIONS = "unispeech.benchmarks.ger.GerBenchmarkOptions"
SPEED_OPTIONS = "unispeech.benchmarks.speed.SpeedOptions"
TTS_FIELDS = ("steps", "guidance_strength", "seed", "start_time")  # the SynthesisOptions `eval tts` takes
NOT_FLAGS = ("command", "action", "run", "verbose")  # what the namespace holds besides the flags
LANGUAGE_HINT_HELP = "give our model each clip's language (hint-trained)"


def command_line(args: argparse.Namespace, *options: Any) -> str:
    """The command that reproduces this run, every flag spelled out: an unset one (None) as the
    field of the same name of one of `options` holds it (a default), the others as given."""
    defaults = {
        field.name: getattr(value, field.name) for value in options for field in dataclasses.fields(value)
    }
    words = ["unispeech", "eval", args.action]
    for name, value in vars(args).items():
        if value is None:
            value = defaults.get(name)
        if name in NOT_FLAGS or value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if name == "manifest":
            words += [part for path in value for part in (flag, str(path))]
        elif isinstance(value, list):
            words += [flag, *map(str, value)]
        else:
            words += [flag] if value is True else [flag, spelled(value)]
    return shlex.join(words)


def _eval_asr(args: argparse.Namespace) -> None:
    from unispeech.benchmarks import asr
    from unispeech.benchmarks.clips import read_clips
    from unispeech.benchmarks.report import number, percent, write_report
    from unispeech.tasks.decoding import DecodingOptions

    options = asr.AsrBenchmarkOptions(**given(args, "batch_size", "worst"))
    decoding = DecodingOptions(**given(args, "beam_size", *CTC_FIELDS))  # bad values fail before loading
    if args.reliance and args.model == asr.WHISPER_BASE:
        raise ValueError("--reliance scores a unispeech model's ASR adapter, not whisper-base")
    clips = read_clips(args.manifest, args.limit, args.sample)  # a bad manifest fails before the model loads
    transcriber = asr.load_transcriber(
        args.model,
        adapters_choice(args),
        args.whisper,
        args.language_hint,
        options.batch_size,
        decoding,
        args.weight_format,
        [clip.utterance.lang for clip in clips],  # each language's own adapters (<adapters>/de/asr/)
    )
    result = asr.score_asr(clips, transcriber, options)
    reliance = None
    if args.reliance:
        scored = [utterance.clip for utterance in result.utterances]
        reliance = asr.score_reliance(transcriber.speech, scored, options.batch_size)
    command = command_line(args, options, decoding)
    report = asr.asr_report(result, _names(args.manifest), options, command, reliance)
    files = write_report(report, args.out)
    overall = result.overall()
    print(
        f"{files.markdown}: {overall.metric} {percent(overall.count.rate)} on {overall.utterances} "
        f"utterances ({len(result.skipped)} skipped), RTF {number(result.real_time_factor)}"
    )


def _eval_tts(args: argparse.Namespace) -> None:
    from unispeech.benchmarks import asr
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
    from unispeech.tasks.synthesis import SynthesisOptions

    options = SynthesisOptions(**given(args, *TTS_FIELDS))
    _check_limit(args.limit, "pair")
    clips = read_clips(args.manifest)  # bad manifests and pairs fail before any model loads
    skipped: list[Skipped] = []
    pairs = read_pairs(args.pairs, clips) if args.pairs else pair_by_speaker(clips, args.speakers, skipped)
    pairs = pairs[: args.limit]
    encoder = ResemblyzerEncoder.load()
    judge = asr.load_transcriber("whisper-base", whisper_weights=args.judge)
    speech = load_speech(args, [clip.utterance.lang for clip in clips])  # each language's own adapters
    synthesizer = UnispeechSynthesizer(speech, options, name=args.model)
    result = score_tts(pairs, synthesizer, judge, encoder, skipped, args.out / AUDIO_FOLDER)
    settings = {name: getattr(options, name) for name in TTS_FIELDS}
    report = tts_report(result, _names(args.manifest), settings, command=command_line(args, options))
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
    from unispeech.model.sequences import TTS

    clips = read_clips(args.manifest)
    skipped: list[Skipped] = []
    pairs = pair_by_speaker(clips, None, skipped)
    speech = load_speech(args)
    speech.set_task(TTS if TTS in speech.tasks else None)  # a model without adapters: its base
    items = score_durations(speech.model, pairs[: args.limit], args.language)
    report = durations_report(items, _names(args.manifest), command=command_line(args))
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
    from unispeech.data.nbest import read_nbest
    from unispeech.tasks.correction import CorrectionOptions, NoHarmGate
    from unispeech.tasks.rescoring import Rescorer

    correction = CorrectionOptions()
    if args.no_repeat_ngram_size is not None:
        decoding = dataclasses.replace(
            correction.decoding, no_repeat_ngram_size=args.no_repeat_ngram_size or None
        )
        correction = dataclasses.replace(correction, decoding=decoding)
    if args.no_gate:
        correction = dataclasses.replace(correction, gate=None)
    elif args.gate is not None:
        correction = dataclasses.replace(correction, gate=NoHarmGate(*args.gate))
    options = GerBenchmarkOptions(**given(args, "batch_size", "with_audio"))
    _check_limit(args.limit, "list")
    lists = {path: read_nbest(path)[: args.limit] for path in args.nbest}  # bad files fail before loading
    for path, items in lists.items():
        if not items:
            raise ValueError(f"{path} holds no N-best lists")
    if args.rescore is not None:
        corrector = RescoringCorrector(load_speech(args), Rescorer(*args.rescore))
    else:
        corrector = UnispeechCorrector(load_speech(args), correction, name=args.model)
    result = GerResult.combine([score_ger(items, corrector, path, options) for path, items in lists.items()])
    files = write_report(ger_report(result, _names(lists), options, command_line(args, options)), args.out)
    rates = {name: percent(count.rate) for name, count in result.totals().items()}
    print(
        f"{files.markdown}: {len(result.items)} lists ({len(result.skipped)} skipped): WER 1-best "
        f"{rates[FIRST]}, corrected {rates[CORRECTED]}, oracle {rates[ORACLE]}"
    )


def _eval_speed(args: argparse.Namespace) -> None:
    from unispeech.benchmarks.clips import read_clips
    from unispeech.benchmarks.report import number, write_report
    from unispeech.benchmarks.speed import DEFAULT_CLIPS, SpeedOptions, measure_speed, speed_report

    fields = given(args, "tts_clips", "start_time", "threads", "language_hint", "weight_format", *CTC_FIELDS)
    if args.nfe is not None:
        try:
            fields["nfe"] = tuple(int(steps) for steps in args.nfe.split(","))
        except ValueError:
            raise ValueError(
                f"--nfe takes comma-separated step counts, e.g. 0,2,4,8; got {args.nfe!r}"
            ) from None
    options = SpeedOptions(warmup=not args.no_warmup, **fields)
    limit = DEFAULT_CLIPS if args.limit is None and args.sample is None else args.limit
    clips = read_clips(args.manifest, limit, args.sample)
    result = measure_speed(clips, args.model, adapters_choice(args), args.whisper, options)
    report = speed_report(result, _names(args.manifest), command_line(args, options))
    files = write_report(report, args.out)
    ratios = report.data["ratios"]
    print(
        f"{files.markdown}: {args.model} / whisper-base: RTF ratio {number(ratios['real_time_factor'], 2)}, "
        f"peak memory ratio {number(ratios['peak_added'], 2)}"
    )


def _names(paths: Iterable[Path]) -> list[str]:
    return [str(path) for path in paths]


def _check_limit(limit: int | None, unit: str) -> None:
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1 {unit}, got {limit}")


def add_eval_commands(commands: argparse._SubParsersAction) -> None:
    """`unispeech eval asr|tts|durations|ger|speed` under the `unispeech` command's `commands`."""
    evaluate = commands.add_parser(
        "eval", help="benchmarks on your own data: ASR WER, TTS round trip, GER, speed"
    ).add_subparsers(dest="action", required=True)

    def common(command: argparse.ArgumentParser, model_help: str) -> None:
        command.add_argument("--out", type=Path, required=True, help="report folder (report.md/.json/.png)")
        add_model_flags(command, model_help)

    def manifests(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--manifest", type=Path, action="append", required=True, help="a manifest (repeat for several)"
        )

    asr = evaluate.add_parser("asr", help="WER (CER for ja/ko/zh) and real-time factor of an ASR system")
    manifests(asr)
    common(asr, "smol, whisper-base (openai-whisper base, greedy), or a saved model folder")
    asr.add_argument("--limit", type=int, help="only the first N utterances of each manifest")
    asr.add_argument("--sample", type=int, help="N utterances spread evenly over each manifest")
    add_option_flag(asr, ASR_OPTIONS, "batch_size", type=int, help="clips transcribed together")
    add_option_flag(asr, ASR_OPTIONS, "worst", type=int, help="worst utterances listed in report.md")
    asr.add_argument("--whisper", default="smol", help="whisper-base weights: a model name or a file")
    asr.add_argument("--language-hint", action="store_true", help=LANGUAGE_HINT_HELP)
    asr.add_argument(
        "--reliance",
        action="store_true",
        help="also score the references with their own speech, another clip's and none (does it listen?)",
    )
    add_option_flag(asr, DECODING, "beam_size", type=int, help="beam width (default: greedy)")
    add_ctc_flags(asr)
    asr.set_defaults(run=_eval_asr)

    tts = evaluate.add_parser("tts", help="round-trip WER, speaker similarity and real-time factor of TTS")
    manifests(tts)
    common(tts, "smol or a saved model folder")
    voices = tts.add_mutually_exclusive_group()
    voices.add_argument("--speakers", nargs="+", help="only these speakers (default: every speaker)")
    voices.add_argument("--pairs", type=Path, help='JSON lines {"target": AUDIO, "prompt": AUDIO}')
    tts.add_argument("--limit", type=int, help="only the first N pairs")
    flags = {name: SYNTHESIS_FLAGS[name] for name in TTS_FIELDS}
    add_option_flags(tts, SYNTHESIS, flags, aliases={"guidance_strength": ("--guidance",)})
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
    add_option_flag(ger, GER_OPTIONS, "batch_size", type=int, help="lists corrected together")
    add_option_flag(
        ger, GER_OPTIONS, "with_audio", action="store_true", help="let the model listen to each list's audio"
    )
    ger.add_argument(
        "--no-repeat-ngram-size",
        type=int,
        help="forbid writing any n-gram of tokens twice (0: allow; default: the corrector's own setting)",
    )
    gating = ger.add_mutually_exclusive_group()
    gating.add_argument("--no-gate", action="store_true", help="take every generated correction (no gate)")
    gating.add_argument(
        "--gate",
        type=float,
        nargs=3,
        metavar=("MARGIN", "SINGLE_MARGIN", "MAX_DISTANCE"),
        help="the no-harm gate's thresholds (default: NoHarmGate's, calibrated for the shipped "
        "adapter; train/calibrate_gate.py calibrates them for another)",
    )
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
    add_option_flag(
        speed, SPEED_OPTIONS, "nfe", help="TTS step counts timed, comma-separated (0: the prior alone)"
    )
    add_option_flag(speed, SPEED_OPTIONS, "start_time", type=float, help="where the ODE starts for NFE > 0")
    add_option_flag(speed, SPEED_OPTIONS, "tts_clips", type=int, help="clips spoken per NFE (0: no TTS)")
    add_option_flag(
        speed, SPEED_OPTIONS, "threads", type=int, help="torch threads in every process (default: as here)"
    )
    speed.add_argument("--whisper", default="smol", help="whisper-base weights: a model name or a file")
    speed.add_argument("--no-warmup", action="store_true", help="time the first clip too")
    add_option_flag(speed, SPEED_OPTIONS, "language_hint", action="store_true", help=LANGUAGE_HINT_HELP)
    add_ctc_flags(speed)
    speed.set_defaults(run=_eval_speed)
