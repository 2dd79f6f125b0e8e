#!/usr/bin/env bash
# The evaluation figures of README.md ("Evaluation"), re-made: each command writes report.md,
# report.json and report.png to a folder under ${OUT:-../eval-reports}. The dev manifests are those
# `bash train/prepare_data.sh` writes to $DATA (default ../data, as there); NBEST is an N-best
# file, by default the whole LJ001 one of README.md's "Data" section
# (`unispeech data nbest --manifest $DATA/ljspeech.jsonl -o $DATA/nbest/lj001.jsonl --augment 0.5`).
set -euo pipefail
cd "$(dirname "$0")/.."
data="${DATA:-../data}"
out="${OUT:-../eval-reports}"
nbest="${NBEST:-$data/nbest/lj001.jsonl}"
unispeech=(.venv/bin/unispeech eval)

for system in smol whisper-base; do
    name="${system%%-base}"
    reliance=(); [ "$system" = smol ] && reliance=(--reliance)
    "${unispeech[@]}" asr --model "$system" --manifest "$data/ljspeech.dev.jsonl" "${reliance[@]}" --out "$out/asr-$name-lj"
    "${unispeech[@]}" asr --model "$system" --manifest "$data/fsdd.dev.jsonl" --sample 100 --out "$out/asr-$name-fsdd"
    "${unispeech[@]}" asr --model "$system" --manifest "$data/synthetic/manifest.dev.jsonl" --sample 30 --out "$out/asr-$name-synth"
done
"${unispeech[@]}" speed --manifest "$data/ljspeech.dev.jsonl" --limit 10 --tts-clips 0 --out "$out/speed-asr"
"${unispeech[@]}" ger --nbest "$nbest" --limit 8 --out "$out/ger"
"${unispeech[@]}" tts --manifest "$data/ljspeech.dev.jsonl" --limit 2 --steps 8 --out "$out/tts"
