"""Partition existing N-best files by the train/dev manifests their recordings belong to.

N-best lists cost seconds of whisper-base decoding per clip on a CPU; lists made before a split was
fixed need not be made again. Each item goes to `<out>/<name>.<side>.jsonl` for the manifest that
holds its recording (matched by resolved path, or by voice folder and file name when the corpus
was rendered elsewhere with the same names); items of no manifest are counted and left out.
Audio paths are rewritten relative to the output files.

    python train/split_nbest.py --nbest /tmp/lj/nbest_lj001.jsonl --name ljspeech \
        --manifest train=../data/ljspeech.train.jsonl --manifest dev=../data/ljspeech.dev.jsonl \
        --out ../data/nbest
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from dataclasses import replace
from pathlib import Path

from unispeech.data.manifest import read_manifest
from unispeech.data.nbest import read_nbest
from unispeech.files import atomic_write_text


def key(path: Path) -> str:
    """A recording's identity across copies of a corpus: its folder and file name."""
    return f"{path.parent.name}/{path.name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nbest", type=Path, nargs="+", required=True, help="N-best JSON lines files")
    parser.add_argument("--name", required=True, help="output name: <out>/<name>.<side>.jsonl")
    parser.add_argument("--manifest", action="append", required=True, metavar="SIDE=MANIFEST")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    side_of: dict[str, str] = {}
    for entry in args.manifest:
        side, _, manifest = entry.partition("=")
        for utterance in read_manifest(manifest):
            side_of[key(utterance.path(manifest))] = side
    sides: dict[str, list] = {side: [] for side in dict.fromkeys(side_of.values())}
    counts = Counter()
    args.out.mkdir(parents=True, exist_ok=True)
    for file in args.nbest:
        for item in read_nbest(file):
            audio = (file.parent / item.audio).resolve() if item.audio else None
            side = side_of.get(key(audio)) if audio else None
            counts[side or "in no manifest"] += 1
            if side:
                sides[side].append(replace(item, audio=os.path.relpath(audio, args.out.resolve())))
    for side, items in sides.items():
        path = args.out / f"{args.name}.{side}.jsonl"
        atomic_write_text(path, "".join(item.to_json() + "\n" for item in items))
        print(f"{path}: {len(items)} lists")
    print(dict(counts))


if __name__ == "__main__":
    main()
