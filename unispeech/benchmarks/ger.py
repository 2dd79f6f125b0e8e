"""The N-best correction (GER) benchmark: on N-best lists with their references, the error rate of
the recogniser's first hypothesis, of a corrector's output, and of the oracle (the hypothesis of
each list closest to the reference: what a perfect chooser among the N best would reach).

A corrector that only re-ranks cannot beat the oracle; a generative one can, by writing words no
hypothesis holds. Lists are read with `unispeech.data.nbest.read_nbest` (our JSON lines or
HyPoradise's JSON); each list is scored in its own `lang` (English when it has none). The corrector
is an object (`Corrector`), so tests can inject one whose outputs they control; `UnispeechCorrector`
runs `Unispeech.correct`, listening to the recording too when asked (`with_audio`; the audio path is
relative to the N-best file, and a list whose audio is missing is skipped and counted). Results of
several files combine into one (`GerResult.combine`); the report then breaks the error rates down by
file, and always shows the lists whose first hypothesis is already right, where a corrector can only
do harm.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tqdm.auto import tqdm

from unispeech.benchmarks.clips import Skipped, require_some
from unispeech.benchmarks.report import (
    BarChart,
    Report,
    clip_text,
    markdown_table,
    number,
    percent,
    skipped_section,
)
from unispeech.benchmarks.scoring import ErrorCount, count_errors, group_by, metric_name, total
from unispeech.data.manifest import DEFAULT_LANGUAGE
from unispeech.data.nbest import NbestItem
from unispeech.evaluation.metrics import oracle_hypothesis
from unispeech.tasks.correction import CorrectionOptions, clean_hypotheses
from unispeech.tasks.rescoring import Rescorer, language_model_scores

if TYPE_CHECKING:
    from unispeech.api import Unispeech

FIRST, CORRECTED, ORACLE = "1-best", "corrected", "oracle best-of-N"
RIGHT_FIRST = "1-best right"  # the group of lists whose first hypothesis has no errors


class Corrector(Protocol):
    name: str

    def correct(self, nbest_lists: Sequence[Sequence[str]], audios: Sequence[Path | None]) -> list[str]:
        """One transcript per N-best list (hypotheses best first); `audios` are the recordings (or
        None) for a corrector that listens."""
        ...


@dataclass
class UnispeechCorrector:
    speech: Unispeech
    options: CorrectionOptions = field(default_factory=CorrectionOptions)
    name: str = "unispeech"

    def correct(self, nbest_lists: Sequence[Sequence[str]], audios: Sequence[Path | None]) -> list[str]:
        lists = [list(hypotheses) for hypotheses in nbest_lists]
        listening = None if all(audio is None for audio in audios) else [a and str(a) for a in audios]
        return self.speech.correct(lists, listening, self.options)


@dataclass
class RescoringCorrector:
    """The baseline anyone would try (`unispeech.tasks.rescoring`): the bare backbone's LM score of
    each hypothesis, weighed against its rank and length; it only chooses, and never listens."""

    speech: Unispeech
    rescorer: Rescorer
    name: str = "LM rescoring"

    def correct(self, nbest_lists: Sequence[Sequence[str]], audios: Sequence[Path | None]) -> list[str]:
        lists = [clean_hypotheses(hypotheses) for hypotheses in nbest_lists]
        scores = iter(
            language_model_scores(self.speech.model, self.speech.processor, [t for h in lists for t in h])
        )
        return [self.rescorer.choose(h, [next(scores) for _ in h]) for h in lists]


@dataclass(frozen=True)
class GerBenchmarkOptions:
    """Lists handed to the corrector at a time; `with_audio` gives it each list's recording; the
    `listed` lists whose correction changed the error count most are shown in the Markdown."""

    batch_size: int = 8
    with_audio: bool = False
    listed: int = 10

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.listed < 0:
            raise ValueError(f"need batch_size >= 1 and listed >= 0, got {self.batch_size}, {self.listed}")


@dataclass(frozen=True)
class GerItem:
    source: str  # the N-best file's stem
    number: int  # 1-based position in the N-best file
    item: NbestItem
    corrected: str
    oracle: str
    counts: dict[str, ErrorCount]  # FIRST / CORRECTED / ORACLE → errors

    @property
    def lang(self) -> str:
        return self.item.lang or DEFAULT_LANGUAGE

    @property
    def change(self) -> int:
        """Errors the correction removed (negative: added) against the first hypothesis."""
        return self.counts[FIRST].errors - self.counts[CORRECTED].errors

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "number": self.number,
            "lang": self.lang,
            "audio": self.item.audio,
            "reference": self.item.output,
            "hypotheses": self.item.input,
            "corrected": self.corrected,
            "oracle": self.oracle,
            **{f"{name} errors": count.errors for name, count in self.counts.items()},
            "reference_units": self.counts[FIRST].units,
        }


@dataclass
class GerResult:
    corrector: str
    items: list[GerItem]
    skipped: list[Skipped]
    compute_seconds: float

    def totals(self, items: Sequence[GerItem] | None = None) -> dict[str, ErrorCount]:
        items = self.items if items is None else items
        return {name: total(item.counts[name] for item in items) for name in (FIRST, CORRECTED, ORACLE)}

    def by_language(self) -> dict[str, dict[str, ErrorCount]]:
        return {lang: self.totals(items) for lang, items in group_by(self.items, lambda i: i.lang).items()}

    def groups(self) -> dict[str, list[GerItem]]:
        """The lists of each source (when there are several), then those whose 1-best is right."""
        sources = group_by(self.items, lambda item: item.source)
        right = [item for item in self.items if item.counts[FIRST].errors == 0]
        return {**(sources if len(sources) > 1 else {}), RIGHT_FIRST: right}

    @property
    def improved(self) -> int:
        return _improved(self.items)

    @property
    def worsened(self) -> int:
        return _worsened(self.items)

    @classmethod
    def combine(cls, results: Sequence[GerResult]) -> GerResult:
        """One result of several files' results (of the same corrector)."""
        return cls(
            results[0].corrector,
            [item for result in results for item in result.items],
            [skipped for result in results for skipped in result.skipped],
            sum(result.compute_seconds for result in results),
        )


def _improved(items: Sequence[GerItem]) -> int:
    return sum(item.change > 0 for item in items)


def _worsened(items: Sequence[GerItem]) -> int:
    return sum(item.change < 0 for item in items)


def score_ger(
    items: Sequence[NbestItem],
    corrector: Corrector,
    nbest_file: str | Path,
    options: GerBenchmarkOptions = GerBenchmarkOptions(),
    progress: bool = True,
) -> GerResult:
    """Correct every list with `corrector` and count the errors of 1-best, correction and oracle."""
    nbest_file = Path(nbest_file)
    source = nbest_file.stem
    skipped: list[Skipped] = []
    todo: list[tuple[int, NbestItem, Path | None]] = []
    for position, item in enumerate(items, start=1):
        audio = None
        if options.with_audio:
            audio = None if item.heard_audio is None else nbest_file.parent / item.heard_audio
            if audio is None or not audio.is_file():
                reason = "no audio path" if audio is None else f"no such audio file: {audio}"
                skipped.append(Skipped(source, position, item.heard_audio or "", reason))
                continue
        todo.append((position, item, audio))
    scored = []
    compute_seconds = 0.0
    batches = range(0, len(todo), options.batch_size)
    for start in tqdm(batches, desc=f"ger {corrector.name}", unit="batch", disable=not progress):
        batch = todo[start : start + options.batch_size]
        began = time.perf_counter()
        corrections = corrector.correct([item.input for _, item, _ in batch], [audio for *_, audio in batch])
        compute_seconds += time.perf_counter() - began
        if len(corrections) != len(batch):
            raise RuntimeError(
                f"{corrector.name} returned {len(corrections)} corrections for {len(batch)} lists"
            )
        for (position, item, _), corrected in zip(batch, corrections, strict=True):
            lang = item.lang or DEFAULT_LANGUAGE
            first = item.input[0] if item.input else ""
            oracle = oracle_hypothesis(item.output, item.input, lang)
            texts = {FIRST: first, CORRECTED: corrected, ORACLE: oracle}
            counts = {name: count_errors(item.output, text, lang) for name, text in texts.items()}
            scored.append(GerItem(source, position, item, corrected, oracle, counts))
    require_some(len(scored), skipped, "N-best list")
    return GerResult(corrector.name, scored, skipped, compute_seconds)


def ger_report(
    result: GerResult,
    nbest_files: Sequence[str],
    options: GerBenchmarkOptions = GerBenchmarkOptions(),
    command: str | None = None,
) -> Report:
    totals = result.totals()
    languages = result.by_language()
    metric = "/".join(sorted({metric_name(lang) for lang in languages}))
    notes = [
        f"- corrector: `{result.corrector}`{' (listening to the audio)' if options.with_audio else ''}",
        f"- N-best lists: {', '.join(f'`{name}`' for name in nbest_files)}",
        *([f"- command: `{command}`"] if command else []),
    ]
    hypotheses = sum(len(item.item.input) for item in result.items) / len(result.items)
    summary = (
        f"{len(result.items)} lists ({hypotheses:.2f} hypotheses each) scored, {len(result.skipped)} "
        f"skipped. {metric}: 1-best **{percent(totals[FIRST].rate)}**, corrected "
        f"**{percent(totals[CORRECTED].rate)}**, oracle best-of-N **{percent(totals[ORACLE].rate)}**. "
        f"The correction removed errors in {result.improved} lists and added errors in {result.worsened}; "
        f"{number(result.compute_seconds / len(result.items))} s of compute per list."
    )
    header = ("language", "lists", "reference units", FIRST, CORRECTED, ORACLE)
    language_rows = [
        (
            lang,
            sum(item.lang == lang for item in result.items),
            counts[FIRST].units,
            *(percent(counts[name].rate) for name in (FIRST, CORRECTED, ORACLE)),
        )
        for lang, counts in languages.items()
    ]
    groups = {name: (items, result.totals(items)) for name, items in result.groups().items() if items}
    group_rows = [
        (
            name,
            len(items),
            counts[FIRST].units,
            *(percent(counts[n].rate) for n in (FIRST, CORRECTED, ORACLE)),
            _improved(items),
            _worsened(items),
        )
        for name, (items, counts) in groups.items()
    ]
    changed = sorted(result.items, key=lambda item: -abs(item.change))
    changed = [item for item in changed if item.change][: options.listed]
    change_rows = [
        (
            f"{item.source}:{item.number}",
            f"{item.change:+d}",
            clip_text(item.item.output),
            clip_text(item.item.input[0] if item.item.input else ""),
            clip_text(item.corrected),
        )
        for item in changed
    ]
    body = "\n\n".join(
        [
            summary,
            "## By language\n\n" + markdown_table(header, language_rows),
            "## Where it helps and where it hurts\n\nBy N-best file, and the lists whose 1-best is "
            "already right (a corrector can only add errors there).\n\n"
            + markdown_table(("group", *header[1:], "better", "worse"), group_rows),
            f"## Largest changes\n\n{len(changed)} lists whose error count the correction changed most "
            "(positive: fewer errors).\n\n"
            + markdown_table(("list", "errors removed", "reference", FIRST, CORRECTED), change_rows),
            skipped_section(result.skipped),
        ]
    )
    data = {
        "task": "ger",
        "corrector": result.corrector,
        "nbest_files": list(nbest_files),
        "with_audio": options.with_audio,
        "command": command,
        "lists": len(result.items),
        "error_rates": {name: count.rate for name, count in totals.items()},
        "errors": {name: count.errors for name, count in totals.items()},
        "reference_units": totals[FIRST].units,
        "by_language": {
            lang: {name: count.rate for name, count in counts.items()} for lang, counts in languages.items()
        },
        "groups": {
            name: {
                "lists": len(items),
                **{n: count.rate for n, count in counts.items()},
                "improved": _improved(items),
                "worsened": _worsened(items),
            }
            for name, (items, counts) in groups.items()
        },
        "improved": result.improved,
        "worsened": result.worsened,
        "compute_seconds": result.compute_seconds,
        "skipped": [s.to_dict() for s in result.skipped],
        "items": [item.to_dict() for item in result.items],
    }
    chart = BarChart(
        title=f"N-best correction by {result.corrector}",
        ylabel=f"{metric} (%)",
        categories=[FIRST, CORRECTED, ORACLE],
        series={
            result.corrector: [
                None if totals[n].rate is None else 100 * totals[n].rate for n in (FIRST, CORRECTED, ORACLE)
            ]
        },
    )
    return Report(f"GER benchmark: {result.corrector}", body, data, chart, notes)
