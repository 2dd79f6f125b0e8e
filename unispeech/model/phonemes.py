"""Phonemes: text → IPA symbols → ids of a fixed table, the units TTS aligns and conditions on.

Text says little about how it sounds ("read" and "read", "1984"); phonemes say it, and with a fixed
table the TTS task learns one embedding per sound instead of finding sounds inside BPE tokens.
`Phonemizer` runs `phonemizer`'s espeak-ng backend per language — IPA with stress marks, word
boundaries and punctuation kept, numbers and abbreviations expanded into words — and falls back to
the lowercased characters where espeak-ng lacks the language. `PHONEME_SYMBOLS` is the table:
VITS's symbol set (punctuation, Latin letters for the fallback, the IPA letters and marks
espeak-ng writes), after `<pad>`, `<unk>` and `<sil>`. Every sequence starts and ends with
`<sil>`, so the silence before and after speech has a unit of its own; between words the space
is a unit, which takes a pause where there is one. A symbol outside the table becomes `<unk>`.

The units of duration are sounds, not symbols: a stress mark joins the sound after it and a length
mark the sound before it ("ˈiː" is one unit of three symbols), so no mark gets frames of its own.
A unit is the tuple of its symbols' ids, and its embedding the sum of theirs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache

import torch

logger = logging.getLogger(__name__)

PAD, UNKNOWN, SILENCE = "<pad>", "<unk>", "<sil>"
WORD_BOUNDARY = " "
_PUNCTUATION = ';:,.!?¡¿—…"«»“” -'
_LATIN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyzäöüßàâçéèêëîïôûùœæ'"
_IPA = (
    "ɑɐɒæɓʙβɔɕçɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐʒʔʡʕʢǀǁǂǃ"
    "ˈˌːˑʼʴʰʱʲʷˠˤ˞↓↑→↗↘\u0329ᵻ\u0303"
)
PHONEME_SYMBOLS: tuple[str, ...] = tuple(
    dict.fromkeys((PAD, UNKNOWN, SILENCE, *_PUNCTUATION, *_LATIN, *_IPA))
)  # ordered, duplicates (letters shared by Latin and IPA) kept once
SYMBOL_IDS = {symbol: index for index, symbol in enumerate(PHONEME_SYMBOLS)}
PAD_ID, UNKNOWN_ID, SILENCE_ID = SYMBOL_IDS[PAD], SYMBOL_IDS[UNKNOWN], SYMBOL_IDS[SILENCE]
# Marks that belong to a neighbouring sound: stress to the next, length and the rest to the one before.
PREFIX_MARKS = frozenset("ˈˌ")
SUFFIX_MARKS = frozenset("ːˑʰʱʲʷˠˤ˞ʼ\u0329\u0303")
UNIT_WIDTH = 4  # symbols a unit may hold: a sound, a stress mark and two suffix marks
PAUSE_SYMBOLS = frozenset((SILENCE, WORD_BOUNDARY, *_PUNCTUATION))  # units that may hold a pause

# espeak-ng's voice for each language code a manifest uses, where the code alone is not one
ESPEAK_VOICES = {"en": "en-us"}


@cache
def _espeak(voice: str):
    """A phonemizer espeak-ng backend for `voice`, made once (loading a voice costs milliseconds)."""
    from phonemizer.backend import EspeakBackend

    return EspeakBackend(voice, preserve_punctuation=True, with_stress=True, language_switch="remove-flags")


@cache
def espeak_voice(language: str) -> str | None:
    """espeak-ng's voice for an ISO language code ("en" → "en-us", "de" → "de"), or None when
    espeak-ng (or phonemizer) is missing or lacks the language."""
    try:
        from phonemizer.backend import EspeakBackend

        supported = EspeakBackend.supported_languages()
    except (ImportError, RuntimeError) as error:  # RuntimeError: phonemizer finds no espeak-ng library
        logger.warning("phonemes by characters: espeak-ng is not usable (%s)", error)
        return None
    voice = ESPEAK_VOICES.get(language, language)
    return voice if voice in supported else None


class Phonemizer:
    """Text → phoneme strings and ids. `phonemes` is batched (espeak-ng is fast; one call per list)."""

    def phonemes(self, texts: list[str], language: str = "en") -> list[str]:
        """IPA strings of `texts` (stress marks, word boundaries and punctuation kept), or the
        lowercased text itself where espeak-ng lacks `language`."""
        voice = espeak_voice(language)
        if voice is None:
            return [" ".join(text.lower().split()) for text in texts]
        return [" ".join(ipa.split()) for ipa in _espeak(voice).phonemize(texts, strip=True)]

    def units(self, texts: list[str], language: str = "en") -> list[list[tuple[int, ...]]]:
        """Each text's units (`phoneme_units`)."""
        return [phoneme_units(phonemes) for phonemes in self.phonemes(texts, language)]


def phoneme_units(phonemes: str) -> list[tuple[int, ...]]:
    """`<sil>`, the units of `phonemes` as tuples of table ids (`<unk>` outside the table; marks
    beyond `UNIT_WIDTH` dropped), `<sil>`."""
    groups: list[list[str]] = []
    pending: list[str] = []  # stress marks waiting for their sound
    for symbol in phonemes:
        if symbol in PREFIX_MARKS:
            pending.append(symbol)
        elif symbol in SUFFIX_MARKS and groups and not pending:
            groups[-1].append(symbol)
        else:
            groups.append([*pending, symbol])
            pending = []
    if pending:  # a stress mark with no sound after it is a unit of its own
        groups.append(pending)
    units = [tuple(SYMBOL_IDS.get(symbol, UNKNOWN_ID) for symbol in group[:UNIT_WIDTH]) for group in groups]
    return [(SILENCE_ID,), *units, (SILENCE_ID,)]


def unit_symbols(unit: tuple[int, ...]) -> str:
    return "".join(PHONEME_SYMBOLS[index] for index in unit)


def unit_sound(unit: tuple[int, ...]) -> str:
    """The sound of a unit, its marks left out ("ˈiː" → "i")."""
    sounds = [PHONEME_SYMBOLS[i] for i in unit if PHONEME_SYMBOLS[i] not in PREFIX_MARKS | SUFFIX_MARKS]
    return sounds[0] if sounds else PHONEME_SYMBOLS[unit[0]]


def unit_tensor(units: Sequence[tuple[int, ...]]) -> torch.Tensor:
    """Units as `(N, UNIT_WIDTH)` ids, `PAD_ID` after each unit's symbols."""
    return torch.tensor(
        [unit + (PAD_ID,) * (UNIT_WIDTH - len(unit)) for unit in units], dtype=torch.long
    ).view(-1, UNIT_WIDTH)


def frame_units(units: Sequence[tuple[int, ...]], durations: Sequence[int]) -> torch.Tensor:
    """Each mel frame's unit, `(Σ durations, UNIT_WIDTH)`: the units length-regulated by their frames."""
    if len(units) != len(durations):
        raise ValueError(f"{len(units)} phoneme units but {len(durations)} durations")
    return unit_tensor(units).repeat_interleave(torch.tensor(durations, dtype=torch.long), dim=0)
