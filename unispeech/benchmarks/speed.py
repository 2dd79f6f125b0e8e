"""The speed benchmark: ASR real-time factor and peak memory of a unispeech model and of
openai-whisper base, side by side on the same clips and machine, as ratios; and TTS real-time
factor at several NFE (ODE steps; NFE 0 is the phoneme prior alone, the shipped default).

Each system runs in a fresh child process (`python -m unispeech.benchmarks.speed JOB RESULT`),
one after the other, so that neither inherits the other's memory, caches or warm-up. Memory is
the child's peak resident set size (`resource.getrusage(RUSAGE_SELF).ru_maxrss`, the kernel's own
high-water mark, which sees torch's native allocations that `tracemalloc` cannot), reported twice:
the whole peak, and the peak *added* by loading and running the model: the peak minus the resident
size after the child has imported the libraries every system shares (torch, transformers,
openai-whisper, unispeech), measured before anything loads. Ratios use the added peak. A unispeech
model is loaded with `unispeech.load`, vocoder included, so its ASR figure counts the HiFi-GAN
weights too (a fair handicap, not an advantage).

Time: every clip is loaded and resampled before the clock starts; one untimed warm-up clip runs
first (unless switched off); then the real-time factor is compute seconds per audio second (TTS:
per second of speech generated; RTFx is the inverse). Both children use the same number of torch
threads. TTS speaks each chosen clip's text in the voice of another clip (of the same speaker
where the manifest has one), once per NFE. `ru_maxrss` is in KiB on Linux and bytes on macOS;
Windows has no `resource` module, and this benchmark is not supported there.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from unispeech.audio.features import WHISPER_SAMPLE_RATE
from unispeech.benchmarks.asr import WHISPER_BASE
from unispeech.benchmarks.clips import Clip, Skipped, load_usable, require_some
from unispeech.benchmarks.report import BarChart, Report, markdown_table, number, skipped_section
from unispeech.benchmarks.tts import TtsPair, pair_by_speaker
from unispeech.model.cpu_weights import DEFAULT_WEIGHT_FORMAT, check_weight_format
from unispeech.tasks.decoding import JOINT_CTC_WEIGHT, DecodingOptions
from unispeech.tasks.synthesis import SynthesisOptions

ASR, TTS = "asr", "tts"
DEFAULT_NFE = (0, 2, 4, 8)  # 0: the phoneme prior alone (start time 1, no ODE step)
DEFAULT_CLIPS = 10  # of each manifest, unless told otherwise: enough for a stable ratio, quick on a CPU
GIB = 2**30
KIB = 2**10
SHARED_LIBRARIES = ("torch", "transformers", "whisper", "unispeech.api", "unispeech.benchmarks.asr")


@dataclass(frozen=True)
class SpeedOptions:
    """`nfe`: the TTS step counts timed (0: the phoneme prior alone, `SynthesisOptions.start_time`
    1), the ODE started at `start_time` for the others; `tts_clips`: how many clips TTS speaks (0: no TTS);
    `threads`: torch threads in every child (None: this process's count); `warmup`: one untimed
    clip first; `ctc_weight` and `speculative`: how the unispeech model decodes ASR
    (`DecodingOptions`; whisper-base decodes its own way); `weight_format`: how it holds its
    backbone's weights (`unispeech.load`; whisper-base runs as openai-whisper does on a CPU, fp32)."""

    nfe: tuple[int, ...] = DEFAULT_NFE
    tts_clips: int = 3
    start_time: float = 0.8  # the adapter card's sweep point: the flow refines 20 % noise over the prior
    threads: int | None = None
    warmup: bool = True
    guidance_strength: float = SynthesisOptions().guidance_strength
    language_hint: bool = False
    ctc_weight: float | None = DecodingOptions().ctc_weight
    speculative: bool | None = DecodingOptions().speculative
    weight_format: str = DEFAULT_WEIGHT_FORMAT

    @property
    def decoding(self) -> DecodingOptions:
        """The unispeech model's ASR decoding (validated when these options are made)."""
        return DecodingOptions(ctc_weight=self.ctc_weight, speculative=self.speculative)

    def __post_init__(self) -> None:
        _ = self.decoding  # validates the decoding fields now, not in the child process
        check_weight_format(self.weight_format)
        if not self.nfe or min(self.nfe) < 0:
            raise ValueError(f"nfe must be step counts >= 0 (0: the phoneme prior alone), got {self.nfe}")
        if not 0 <= self.start_time < 1:
            raise ValueError(f"start_time (of the ODE, NFE > 0) must be in [0, 1), got {self.start_time}")
        if self.tts_clips < 0:
            raise ValueError(f"tts_clips must be >= 0, got {self.tts_clips}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")


@dataclass(frozen=True)
class SpeedJob:
    """What one child process runs: `system` (asr or tts) of `model`, on `clips` (path, lang, text);
    ASR decodes with `ctc_weight` and `speculative`; the unispeech model holds its backbone in
    `weight_format`; TTS speaks `pairs` (target index, prompt index) at each of `nfe` (from
    `start_time`; NFE 0: the prior alone)."""

    system: str
    model: str
    adapters: str | None
    whisper: str
    clips: list[dict[str, str]]
    threads: int
    warmup: bool
    language_hint: bool = False
    pairs: list[tuple[int, int]] = field(default_factory=list)
    nfe: list[int] = field(default_factory=list)
    start_time: float = SpeedOptions().start_time
    guidance_strength: float = SynthesisOptions().guidance_strength
    ctc_weight: float | None = DecodingOptions().ctc_weight
    speculative: bool | None = DecodingOptions().speculative
    weight_format: str = DEFAULT_WEIGHT_FORMAT


Runner = Callable[[SpeedJob], dict]


# ----------------------------------------------------------------------------------------------------
# The child


def max_rss_bytes() -> int:
    """This process's peak resident set size so far."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * KIB


def _import_shared_libraries() -> None:
    """Everything any system needs, imported before the memory baseline, the same for each child."""
    for module in SHARED_LIBRARIES:
        importlib.import_module(module)


def run_job(job: SpeedJob, progress: bool = True) -> dict:
    """Load the model, run the job, and return its timings and memory; in a fresh process for honest
    memory figures (`run_in_subprocess`)."""
    _import_shared_libraries()
    import torch

    from unispeech.audio.features import load_audio

    torch.set_num_threads(job.threads)
    baseline = max_rss_bytes()
    began = time.perf_counter()
    if job.system == ASR:
        from unispeech.benchmarks.asr import load_transcriber

        decoding = DecodingOptions(ctc_weight=job.ctc_weight, speculative=job.speculative)
        system = load_transcriber(
            job.model,
            job.adapters,
            job.whisper,
            job.language_hint,
            decoding=decoding,
            weight_format=job.weight_format,
            languages=[clip["lang"] for clip in job.clips],
        )
    else:
        from unispeech.api import load

        system = load(job.model, adapters=job.adapters, weight_format=job.weight_format)
    load_seconds = time.perf_counter() - began
    result = {"system": job.system, "model": job.model, "threads": job.threads, "load_seconds": load_seconds}
    if job.system == ASR:
        audios = [load_audio(clip["path"], WHISPER_SAMPLE_RATE) for clip in job.clips]
        languages = [clip["lang"] for clip in job.clips]
        if job.warmup:
            system.transcribe(audios[:1], languages[:1])
        compute = 0.0
        for audio, language in tqdm(
            list(zip(audios, languages, strict=True)), desc=f"asr {job.model}", disable=not progress
        ):
            start = time.perf_counter()
            system.transcribe([audio], [language])
            compute += time.perf_counter() - start
        audio_seconds = sum(len(audio) for audio in audios) / WHISPER_SAMPLE_RATE
        result |= {"audio_seconds": audio_seconds, "compute_seconds": compute, "clips": len(audios)}
    else:
        result |= {"nfe": _time_tts(system, job, progress), "pairs": len(job.pairs)}
    peak = max_rss_bytes()
    return result | {
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "peak_added_bytes": peak - baseline,
    }


def _time_tts(speech, job: SpeedJob, progress: bool) -> dict[str, dict[str, float]]:
    from unispeech.audio.features import load_audio

    rate = speech.sample_rate
    audios = {i: load_audio(job.clips[i]["path"], rate) for pair in job.pairs for i in pair}

    def speak(target: int, prompt: int, steps: int):
        start_time = job.start_time if steps else 1.0  # NFE 0: the prior, no velocity pass
        settings = SynthesisOptions(
            steps=max(steps, 1), start_time=start_time, guidance_strength=job.guidance_strength
        )
        text, prompt_text = job.clips[target]["text"], job.clips[prompt]["text"]
        return speech.speak(text, audios[prompt], prompt_text, settings, prompt_sampling_rate=rate)

    if job.warmup and job.pairs:
        speak(*job.pairs[0], steps=1)
    timings = {}
    for steps in tqdm(job.nfe, desc="tts NFE", disable=not progress):
        compute = generated = 0.0
        for target, prompt in job.pairs:
            start = time.perf_counter()
            audio = speak(target, prompt, steps)
            compute += time.perf_counter() - start
            generated += len(audio) / rate
        timings[str(steps)] = {"compute_seconds": compute, "generated_seconds": generated}
    return timings


def child_main(argv: Sequence[str]) -> int:
    """`python -m unispeech.benchmarks.speed JOB.json RESULT.json`: run the job and write its
    result, or `{"error": ...}` and exit 1."""
    job_path, result_path = map(Path, argv)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # per-load bars are noise; ours show the work
    try:
        job = SpeedJob(**json.loads(job_path.read_text()))
        result = run_job(job)
        code = 0
    except Exception as error:  # reported to the parent, which turns it into one error line
        traceback.print_exc()
        result, code = {"error": f"{type(error).__name__}: {error}"}, 1
    result_path.write_text(json.dumps(result))
    return code


# ----------------------------------------------------------------------------------------------------
# The parent


def run_in_subprocess(job: SpeedJob) -> dict:
    """Run `job` in a fresh Python process (its progress bars and errors show on stderr)."""
    package_root = str(Path(__file__).resolve().parents[2])
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, environment.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="unispeech-speed-") as folder:
        job_path, result_path = Path(folder) / "job.json", Path(folder) / "result.json"
        job_path.write_text(json.dumps(asdict(job)))
        command = [sys.executable, "-m", "unispeech.benchmarks.speed", str(job_path), str(result_path)]
        completed = subprocess.run(command, stdin=subprocess.DEVNULL, env=environment, check=False)
        result = json.loads(result_path.read_text()) if result_path.is_file() else {}
    if completed.returncode != 0 or "error" in result:
        reason = result.get("error", "no result written; see the output above")
        raise RuntimeError(
            f"the {job.system} process of {job.model} failed (exit {completed.returncode}): {reason}"
        )
    return result


@dataclass
class SpeedResult:
    model: str
    clips: list[Clip]
    audio_seconds: float
    asr: dict[str, dict]  # system name → the child's result
    tts: dict | None
    skipped: list[Skipped]
    threads: int
    options: SpeedOptions


def measure_speed(
    clips: Sequence[Clip],
    model: str = "smol",
    adapters: str | None = "shipped",
    whisper: str = "smol",
    options: SpeedOptions = SpeedOptions(),
    runner: Runner = run_in_subprocess,
    progress: bool = True,
) -> SpeedResult:
    """Time `model` and openai-whisper base on the same usable clips, each in its own process, and
    `model`'s TTS at each NFE; unusable clips are skipped and counted."""
    import torch

    if model == WHISPER_BASE:
        raise ValueError(
            f"--model is the unispeech model to compare with {WHISPER_BASE}, not {WHISPER_BASE} itself"
        )
    skipped: list[Skipped] = []
    usable = load_usable(clips, WHISPER_SAMPLE_RATE, skipped)
    require_some(len(usable), skipped)
    chosen = [clip for clip, _ in usable]
    audio_seconds = sum(len(audio) for _, audio in usable) / WHISPER_SAMPLE_RATE
    records = [{"path": str(c.path), "lang": c.utterance.lang, "text": c.utterance.text} for c in chosen]
    threads = options.threads if options.threads is not None else torch.get_num_threads()
    common = {
        "adapters": adapters,
        "whisper": whisper,
        "clips": records,
        "threads": threads,
        "warmup": options.warmup,
    }
    unispeech_only = {
        "ctc_weight": options.ctc_weight,
        "speculative": options.speculative,
        "weight_format": options.weight_format,
    }
    jobs = [
        SpeedJob(ASR, model, language_hint=options.language_hint, **unispeech_only, **common),
        SpeedJob(ASR, WHISPER_BASE, language_hint=options.language_hint, **common),
    ]
    if options.tts_clips:
        pairs = _tts_pairs(chosen)[: options.tts_clips]
        indices = [(chosen.index(pair.target), chosen.index(pair.prompt)) for pair in pairs]
        tts_job = SpeedJob(
            TTS,
            model,
            pairs=indices,
            nfe=list(options.nfe),
            start_time=options.start_time,
            guidance_strength=options.guidance_strength,
            weight_format=options.weight_format,
            **common,
        )
        jobs.append(tts_job)
    results = [runner(job) for job in tqdm(jobs, desc="speed", unit="process", disable=not progress)]
    asr = {job.model: result for job, result in zip(jobs, results, strict=True) if job.system == ASR}
    tts = results[-1] if options.tts_clips else None
    return SpeedResult(model, chosen, audio_seconds, asr, tts, skipped, threads, options)


def _tts_pairs(clips: Sequence[Clip]) -> list[TtsPair]:
    """Pairs of the same speaker where there are some; else each clip with the next one (only the
    lengths matter for speed)."""
    pairs = pair_by_speaker(clips, None, [])
    return pairs or [TtsPair(clip, clips[(i + 1) % len(clips)]) for i, clip in enumerate(clips)]


def _weight_text(weight: float | None) -> str:
    return (
        f"{weight}" if weight is not None else f"{JOINT_CTC_WEIGHT} where the adapter has a CTC head, else 0"
    )


def _speculative_text(speculative: bool | None) -> str:
    if speculative is None:
        return "where the adapter has a CTC head (one clip at a time)"
    return "on" if speculative else "off"


def real_time_factor(compute_seconds: float, audio_seconds: float) -> float:
    return compute_seconds / audio_seconds if audio_seconds else float("nan")


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def speed_rows(result: SpeedResult) -> dict[str, dict[str, float]]:
    """Per ASR system: RTF, RTFx, peak memory added and whole (GiB), load seconds."""
    rows = {}
    for name, measured in result.asr.items():
        rtf = real_time_factor(measured["compute_seconds"], measured["audio_seconds"])
        rows[name] = {
            "real_time_factor": rtf,
            "rtfx": ratio(1.0, rtf),
            "peak_added_gib": measured["peak_added_bytes"] / GIB,
            "peak_rss_gib": measured["peak_rss_bytes"] / GIB,
            "load_seconds": measured["load_seconds"],
        }
    return rows


def speed_report(result: SpeedResult, manifests: Sequence[str], command: str | None = None) -> Report:
    rows = speed_rows(result)
    ours, baseline = rows[result.model], rows[WHISPER_BASE]
    ratios = {
        "real_time_factor": ratio(ours["real_time_factor"], baseline["real_time_factor"]),
        "peak_added": ratio(ours["peak_added_gib"], baseline["peak_added_gib"]),
        "peak_rss": ratio(ours["peak_rss_gib"], baseline["peak_rss_gib"]),
    }
    decoding = result.options.decoding
    notes = [
        f"- systems: `{result.model}` (unispeech) and `{WHISPER_BASE}` (openai-whisper base, greedy), "
        f"each in a fresh process, {result.threads} torch thread(s)",
        f"- `{result.model}` decodes ASR greedily with ctc_weight {_weight_text(decoding.ctc_weight)}, "
        f"speculative {_speculative_text(decoding.speculative)}, its backbone weights in "
        f"{result.options.weight_format} (whisper-base: fp32, as openai-whisper runs on a CPU)",
        f"- manifests: {', '.join(f'`{m}`' for m in manifests)}",
        *([f"- command: `{command}`"] if command else []),
    ]
    summary = (
        f"ASR on the same {len(result.clips)} clips ({result.audio_seconds:.1f} s of audio): "
        f"`{result.model}` takes **{number(ratios['real_time_factor'], 2)}×** the compute time of "
        f"whisper-base and **{number(ratios['peak_added'], 2)}×** its peak memory (added by the model, "
        "over the shared libraries). Real-time factor = compute seconds per audio second (lower is "
        "faster); peak memory = the child process's `ru_maxrss`, whole and minus its size after imports."
    )
    header = ("system", "RTF", "RTFx", "peak memory added (GiB)", "peak RSS (GiB)", "load s")
    table_rows = [
        (
            name,
            number(row["real_time_factor"]),
            number(row["rtfx"], 2),
            number(row["peak_added_gib"], 3),
            number(row["peak_rss_gib"], 3),
            number(row["load_seconds"], 1),
        )
        for name, row in rows.items()
    ]
    table_rows.append(
        (
            f"ratio {result.model} / {WHISPER_BASE}",
            number(ratios["real_time_factor"], 2),
            "",
            number(ratios["peak_added"], 2),
            number(ratios["peak_rss"], 2),
            "",
        )
    )
    sections = [summary, "## ASR\n\n" + markdown_table(header, table_rows)]
    tts_rows = {}
    if result.tts is not None:
        for steps, timing in result.tts["nfe"].items():
            tts_rows[steps] = {
                **timing,
                "real_time_factor": real_time_factor(timing["compute_seconds"], timing["generated_seconds"]),
            }
        tts_table = markdown_table(
            ("NFE", "RTF", "speech generated s", "compute s"),
            [
                (
                    steps,
                    number(row["real_time_factor"]),
                    number(row["generated_seconds"], 1),
                    number(row["compute_seconds"], 1),
                )
                for steps, row in tts_rows.items()
            ],
        )
        sections.append(
            f"## TTS\n\n`{result.model}` speaking the text of {result.tts['pairs']} clip(s), each in the "
            f"voice of another clip, at each NFE (0: the phoneme prior alone, no ODE step; the others "
            f"from start time {result.options.start_time}, classifier-free guidance "
            f"{result.options.guidance_strength}); vocoder included; peak memory added "
            f"{number(result.tts['peak_added_bytes'] / GIB, 3)} GiB.\n\n{tts_table}"
        )
    sections.append(skipped_section(result.skipped))
    data = {
        "task": "speed",
        "model": result.model,
        "manifests": list(manifests),
        "command": command,
        "clips": len(result.clips),
        "audio_seconds": result.audio_seconds,
        "threads": result.threads,
        "decoding": {"ctc_weight": decoding.ctc_weight, "speculative": decoding.speculative},
        "weight_format": result.options.weight_format,
        "asr": rows,
        "ratios": ratios,
        "tts": tts_rows,
        "raw": {"asr": result.asr, "tts": result.tts},
        "skipped": [s.to_dict() for s in result.skipped],
    }
    categories = ["ASR RTF", "ASR peak memory added (GiB)", *(f"TTS RTF, NFE {steps}" for steps in tts_rows)]
    chart = BarChart(
        title=f"Speed: {result.model} vs {WHISPER_BASE}",
        ylabel="RTF (compute s / audio s) or GiB",
        categories=categories,
        series={
            result.model: [
                ours["real_time_factor"],
                ours["peak_added_gib"],
                *(row["real_time_factor"] for row in tts_rows.values()),
            ],
            WHISPER_BASE: [
                baseline["real_time_factor"],
                baseline["peak_added_gib"],
                *(None for _ in tts_rows),
            ],
        },
    )
    return Report(
        f"Speed benchmark: {result.model} vs {WHISPER_BASE}", "\n\n".join(sections), data, chart, notes
    )


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
