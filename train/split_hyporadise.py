"""Split HyPoradise's N-best files into GER training and development lists.

Whole files are held out as out-of-domain development sets (`--hold-out`, default TED-LIUM 3 talks
and Switchboard telephone conversations: one domain near the training domains, one far from them);
the other files give a seeded in-domain development slice (`--dev-fraction`), a calibration slice
(`--calibration-fraction`: training-side lists the adapter never trains on, on which the
corrector's no-harm gate is calibrated, never on dev lists) and the training lists.
A list's side is a seeded hash of its normalised reference, so repeated sentences (ATIS has many)
never sit on two sides. Writes `<out>/hyporadise.{train,calibration}.jsonl`, the in-domain dev
slice by domain (`<out>/hyporadise.dev.<domain>.jsonl`, so that a report breaks it down by domain)
and each held-out file (`<out>/hyporadise.heldout.<domain>.jsonl`); the counts are printed.

    python train/split_hyporadise.py --data ../shared/data/hyporadise --out ../data/nbest
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from unispeech.data.nbest import NbestItem, read_nbest
from unispeech.evaluation.metrics import normalize
from unispeech.files import atomic_write_text

HELD_OUT = ("test_td3.json", "test_swbd.json")
HASH_BUCKETS = 10_000


def side(reference: str, dev_fraction: float, calibration_fraction: float, seed: int) -> str:
    """`dev`, `calibration` or `train` for a list with this reference (the same for every copy)."""
    digest = hashlib.sha256(f"{seed}:{normalize(reference)}".encode()).digest()
    position = (int.from_bytes(digest[:4], "little") % HASH_BUCKETS) / HASH_BUCKETS
    if position < dev_fraction:
        return "dev"
    return "calibration" if position < dev_fraction + calibration_fraction else "train"


def domain(file: Path) -> str:
    """`test_atis.json` → `atis`."""
    return file.stem.split("_", 1)[-1]


def write(path: Path, items: list[NbestItem]) -> None:
    atomic_write_text(path, "".join(item.to_json() + "\n" for item in items))
    print(f"{path}: {len(items)} lists")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the folder of HyPoradise JSON files")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--hold-out", nargs="+", default=list(HELD_OUT), help="files kept out whole")
    parser.add_argument("--dev-fraction", type=float, default=0.1)
    parser.add_argument("--calibration-fraction", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    files = sorted(args.data.glob("*.json"))
    missing = sorted(set(args.hold_out) - {file.name for file in files})
    if missing:
        parser.error(f"no such file in {args.data}: {', '.join(missing)}")
    args.out.mkdir(parents=True, exist_ok=True)
    sides: dict[str, list[NbestItem]] = {"train": [], "calibration": []}
    dev: dict[str, list[NbestItem]] = {}  # by domain: ATIS has a training and a test file
    for file in files:
        items = [item for item in read_nbest(file) if item.input]
        if file.name in args.hold_out:
            write(args.out / f"hyporadise.heldout.{domain(file)}.jsonl", items)
            continue
        for item in items:
            chosen = side(item.output, args.dev_fraction, args.calibration_fraction, args.seed)
            (dev.setdefault(domain(file), []) if chosen == "dev" else sides[chosen]).append(item)
    for name, chosen in sides.items():
        write(args.out / f"hyporadise.{name}.jsonl", chosen)
    for name, chosen in dev.items():
        write(args.out / f"hyporadise.dev.{name}.jsonl", chosen)


if __name__ == "__main__":
    main()
