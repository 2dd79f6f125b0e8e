"""Does choosing the N-best's consensus beat the 1-best? A model-free baseline for GER (issue 20).

    python eval/nbest_consensus.py --nbest ../data/nbest/hyporadise.heldout.*.jsonl \
        ../data/nbest/hyporadise.dev.*.jsonl --limit 100

Minimum-Bayes-risk selection: each hypothesis' risk is its word edit distance to the others,
weighted by rank (`exp(-decay · rank)`: decay 0 treats every hypothesis alike, large decays
follow the recogniser's order), and the least risky is chosen (the higher-ranked of equals).
Prints per file and over all the 1-best's WER, the oracle's and each decay's, so that a learned
corrector can be read against what needs no model at all.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from unispeech.benchmarks.scoring import ErrorCount, count_errors, total
from unispeech.data.nbest import NbestItem, read_nbest
from unispeech.evaluation.metrics import normalize, oracle_hypothesis

DECAYS = (0.0, 0.3, 0.6, 1.0)


def distance(a: str, b: str) -> int:
    """Word edits from `a` to `b` (either may be empty)."""
    return count_errors(a, b).errors if a.split() else len(b.split())


def consensus(hypotheses: list[str], decay: float) -> str:
    """The hypothesis of least rank-weighted edit distance to the others."""
    texts = [normalize(h) for h in hypotheses]
    weights = [math.exp(-decay * rank) for rank in range(len(texts))]
    risks = [sum(w * distance(t, o) for w, o in zip(weights, texts, strict=True)) for t in texts]
    return hypotheses[min(range(len(texts)), key=lambda i: (risks[i], i))]


def scores(items: list[NbestItem]) -> dict[str, ErrorCount]:
    """Errors of the 1-best, the oracle and each decay's choice over `items`."""
    chosen = {"1-best": [i.input[0] for i in items]}
    chosen |= {f"decay {d}": [consensus(i.input, d) for i in items] for d in DECAYS}
    counts = {
        name: total(count_errors(item.output, text) for item, text in zip(items, texts, strict=True))
        for name, texts in chosen.items()
    }
    best = (count_errors(item.output, oracle_hypothesis(item.output, item.input)) for item in items)
    return counts | {"oracle": total(best)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nbest", type=Path, nargs="+", required=True, help="N-best JSON lines files")
    parser.add_argument("--limit", type=int, help="only the first N lists of each file")
    args = parser.parse_args()
    everything: list[NbestItem] = []
    for path in args.nbest:
        items = read_nbest(path)[: args.limit]
        everything += items
        print(path.name, _line(scores(items), len(items)))
    print("all", _line(scores(everything), len(everything)))


def _line(counts: dict[str, ErrorCount], lists: int) -> str:
    return f"({lists} lists): " + ", ".join(f"{name} {100 * c.rate:.2f} %" for name, c in counts.items())


if __name__ == "__main__":
    main()
