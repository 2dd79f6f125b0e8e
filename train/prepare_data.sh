#!/usr/bin/env bash
# Builds every manifest the smol recipes train and evaluate on, from ../shared/data and synthetic
# speech, into $DATA (default ../data beside the checkout). Re-running it redoes nothing that is done.
#
#   bash train/prepare_data.sh            # imports, splits, the synthetic corpus
#
# Dev sides (never trained on): LJ001 by utterance (20 %), FSDD by speaker (10 %), synthetic by
# utterance (5 %); the synthetic text excludes every LJ001 sentence, so LJ001 dev text is unseen too.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared/data}
DATA=${DATA:-../data}
SYNTH_COUNT=${SYNTH_COUNT:-6000}
unispeech=.venv/bin/unispeech
mkdir -p "$DATA"

[ -f "$DATA/ljspeech.jsonl" ] || $unispeech data import ljspeech "$SHARED/ljspeech" --manifest "$DATA/ljspeech.jsonl"
[ -f "$DATA/fsdd.jsonl" ] || $unispeech data import fsdd "$SHARED/fsdd" --manifest "$DATA/fsdd.jsonl"
[ -f "$DATA/ljspeech.dev.jsonl" ] || $unispeech data split --manifest "$DATA/ljspeech.jsonl" --by utterance --dev-fraction 0.2
[ -f "$DATA/fsdd.dev.jsonl" ] || $unispeech data split --manifest "$DATA/fsdd.jsonl" --by speaker --dev-fraction 0.1

$unispeech data synth --text "$SHARED/ljspeech/metadata.csv" --exclude-ids LJ001 \
    --out "$DATA/synthetic" --count "$SYNTH_COUNT" --workers 2
[ -f "$DATA/synthetic/manifest.dev.jsonl" ] || \
    $unispeech data split --manifest "$DATA/synthetic/manifest.jsonl" --by utterance --dev-fraction 0.05
