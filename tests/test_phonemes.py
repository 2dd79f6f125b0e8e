import pytest

from unispeech.model.phonemes import (
    PHONEME_SYMBOLS,
    SILENCE_ID,
    SYMBOL_IDS,
    UNKNOWN_ID,
    Phonemizer,
    espeak_voice,
    phoneme_units,
    unit_sound,
    unit_symbols,
)

needs_espeak = pytest.mark.skipif(
    espeak_voice("en") is None, reason="espeak-ng (or phonemizer) is not installed"
)


def test_the_table_is_fixed_and_unique():
    assert len(set(PHONEME_SYMBOLS)) == len(PHONEME_SYMBOLS)
    assert PHONEME_SYMBOLS[:3] == ("<pad>", "<unk>", "<sil>")
    assert all(SYMBOL_IDS[symbol] == index for index, symbol in enumerate(PHONEME_SYMBOLS))


def test_units_start_and_end_with_silence_and_map_strangers_to_unknown():
    units = phoneme_units("hə☃")
    assert units[0] == units[-1] == (SILENCE_ID,)
    assert [unit_symbols(unit) for unit in units[1:-1]] == ["h", "ə", "<unk>"]
    assert units[3] == (UNKNOWN_ID,)


def test_marks_join_their_sounds():
    units = phoneme_units("pɹˈɪntɪŋ, wˌiː ˈ")
    assert [unit_symbols(unit) for unit in units[1:-1]] == [
        *("p", "ɹ", "ˈɪ", "n", "t", "ɪ", "ŋ", ",", " ", "w", "ˌiː", " ", "ˈ"),
    ]
    assert unit_sound(units[11]) == "i"


@needs_espeak
def test_english_comes_out_as_ipa_with_stress_and_spoken_numbers():
    [hello, year, doctor] = Phonemizer().phonemes(["Hello there.", "In 1984", "Dr. Smith"], "en")
    assert hello == "həlˈoʊ ðˈɛɹ."
    assert "nˈaɪntiːn" in year  # espeak-ng says the number
    assert doctor.startswith("dˈɑːktɚ")  # and expands the abbreviation
    [units] = Phonemizer().units(["Hello there, 1984!"], "en")
    assert all(UNKNOWN_ID not in unit for unit in units)


@needs_espeak
def test_german_has_its_own_voice():
    [greeting] = Phonemizer().phonemes(["Grüße"], "de")
    assert greeting == "ɡɾˈyːsə"


def test_a_language_espeak_lacks_falls_back_to_characters():
    assert espeak_voice("xx") is None
    assert Phonemizer().phonemes(["Hello  World"], "xx") == ["hello world"]
