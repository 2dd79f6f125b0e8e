"""Scoring transcripts: word (or character) error rate after Whisper's text normalisers.

The one place where "how wrong is this transcript" is defined, so every report in the project
counts errors the same way: English text goes through openai-whisper's `EnglishTextNormalizer`
(spelling variants, numbers, punctuation), other languages through its `BasicTextNormalizer`;
Chinese, Japanese and Korean, written without spaces between words, are scored by characters.
The counting itself is jiwer's.
"""

from __future__ import annotations

from collections.abc import Sequence

import jiwer
from whisper.normalizers import BasicTextNormalizer, EnglishTextNormalizer

CHARACTER_LANGUAGES = ("ja", "ko", "zh")  # scored by character error rate

_ENGLISH = EnglishTextNormalizer()
_BASIC = BasicTextNormalizer()


def normalize(text: str, language: str = "en") -> str:
    return _ENGLISH(text) if language == "en" else _BASIC(text)


def oracle_hypothesis(reference: str, hypotheses: Sequence[str], language: str = "en") -> str:
    """The hypothesis closest to `reference` (fewest errors; the first of equals): what a perfect
    chooser among the N best would pick. An empty list gives ""."""
    return min(hypotheses, key=lambda h: word_error_rate([reference], [h], language), default="")


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str], language: str = "en") -> float:
    """Corpus-level WER (CER for ja/ko/zh) of `hypotheses` against `references`, both normalised.

    References that normalise to nothing are left out with their hypotheses (a WER over no words
    is undefined); if none is left, the result is 0 when every hypothesis is empty too, else 1.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    pairs = [
        (normalize(r, language), normalize(h, language)) for r, h in zip(references, hypotheses, strict=True)
    ]
    scored = [(r, h) for r, h in pairs if r.strip()]
    if not scored:
        return float(any(h.strip() for _, h in pairs))
    measure = jiwer.cer if language in CHARACTER_LANGUAGES else jiwer.wer
    return float(measure([r for r, _ in scored], [h for _, h in scored]))
