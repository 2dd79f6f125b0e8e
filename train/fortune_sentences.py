"""German sentences for synthetic ASR speech, from Debian's `fortunes-de` (issue 22).

Kerstin's 332 training clips say 332 sentences; espeak-ng's German voices saying the same ones teach
an ASR adapter those sentences, not German (its dev loss rose from step 400 on: train/RUNS.md). No
German text corpus is on PyPI, but Debian packages one: `fortunes-de`, some 3 MB of quotations,
proverbs, jokes and anecdotes in real German prose. This script turns its `*.u8` files into one
sentence a line for `unispeech data synth --text`: entries (between `%` lines) lose their
attributions (`-- Goethe`), are joined and split into sentences; a sentence is kept when it has
`--min-words` to `--max-words` words of German letters and plain punctuation only (no digits, whose
spoken form a transcript would not show; no acronyms, which espeak-ng spells; no quotation marks or
brackets, which dialogue and asides use). The pre-1996 spelling the package mostly uses (daß, muß)
is brought to today's (dass, muss) for the common words, since Kerstin's transcripts use today's.
Sentences also in `--exclude` (a manifest: the dev side) are dropped, so dev sentences stay unseen.

    apt-get install -y fortunes-de
    python train/fortune_sentences.py --exclude ../data/kerstin.dev.jsonl --out ../data/fortunes-de.txt
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from unispeech.evaluation.metrics import normalize
from unispeech.files import atomic_write_text

FORTUNES = Path("/usr/share/games/fortunes/de")
NOT_PROSE = ("asciiart", "translations", "woerterbuch", "quiz", "namen", "vornamen")  # lists, art, English
ATTRIBUTION = re.compile(r"^\s*--")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
GERMAN_SENTENCE = re.compile(r"[A-ZÄÖÜ][A-Za-zÄÖÜäöüß ,;:'\-]*[.!?]")
ACRONYM = re.compile(r"[A-ZÄÖÜ]{2}")
# ß after a short vowel became ss in the 1996 reform; these stems cover most of it in this corpus.
OLD_SPELLING = re.compile(r"\b(da|mu|wu|mü|wü|lä|la|pa|fa|Schlu|bi|Ku|Flu|Ha|mi|Mi|Bi|Ri|Pa)ß")


def entries(text: str) -> list[str]:
    """A fortune file's entries without attributions, each joined into one line."""
    found = []
    for block in text.split("\n%\n"):
        lines = [line for line in block.splitlines() if line.strip() and line.strip() != "%"]
        cut = next((i for i, line in enumerate(lines) if ATTRIBUTION.match(line)), len(lines))
        found.append(" ".join(" ".join(lines[:cut]).split()))
    return [entry for entry in found if entry]


def sentences(entry: str, min_words: int, max_words: int) -> list[str]:
    """The entry's sentences that pass the filters, in today's spelling."""
    kept = []
    for sentence in SENTENCE_END.split(entry):
        sentence = OLD_SPELLING.sub(lambda m: m.group(1) + "ss", sentence.strip())
        words = len(sentence.split())
        german = GERMAN_SENTENCE.fullmatch(sentence) and not ACRONYM.search(sentence)
        if german and min_words <= words <= max_words:
            kept.append(sentence)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fortunes", type=Path, default=FORTUNES, help="folder of fortune-mod *.u8 files")
    parser.add_argument("--exclude", type=Path, nargs="*", default=[], help="manifests of texts to leave out")
    parser.add_argument("--out", type=Path, required=True, help="text file, one sentence a line")
    parser.add_argument("--min-words", type=int, default=4)
    parser.add_argument("--max-words", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="shuffles the sentences (files are by topic)")
    args = parser.parse_args()
    files = sorted(f for f in args.fortunes.glob("*.u8") if f.stem not in NOT_PROSE)
    if not files:
        raise SystemExit(f"no fortune files in {args.fortunes}: apt-get install -y fortunes-de")
    excluded = {normalize(json.loads(line)["text"], "de") for path in args.exclude for line in path.open()}
    seen: set[str] = set()
    kept = []
    for file in files:
        for entry in entries(file.read_text(encoding="utf-8")):
            for sentence in sentences(entry, args.min_words, args.max_words):
                key = normalize(sentence, "de")
                if key not in seen and key not in excluded:
                    seen.add(key)
                    kept.append(sentence)
    random.Random(args.seed).shuffle(kept)
    atomic_write_text(args.out, "".join(f"{sentence}\n" for sentence in kept))
    print(f"{args.out}: {len(kept)} sentences from {len(files)} files")


if __name__ == "__main__":
    main()
