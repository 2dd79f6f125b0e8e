#!/usr/bin/env bash
# The evaluation figures of README.md ("Evaluation"), re-made: each command writes report.md,
# report.json and report.png to a folder under ${OUT:-../eval-reports}. The dev manifests are those
# `bash train/prepare_data.sh` writes to $DATA (default ../data, as there), the N-best lists those
# of `NBEST=1 bash train/prepare_data.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${DATA:-../data}"
out="${OUT:-../eval-reports}"
unispeech=(.venv/bin/unispeech eval)

for system in smol whisper-base; do
    name="${system%%-base}"
    reliance=(); [ "$system" = smol ] && reliance=(--reliance)
    "${unispeech[@]}" asr --model "$system" --manifest "$data/ljspeech.dev.jsonl" "${reliance[@]}" --out "$out/asr-$name-lj"
    "${unispeech[@]}" asr --model "$system" --manifest "$data/fsdd.dev.jsonl" --sample 100 --out "$out/asr-$name-fsdd"
    "${unispeech[@]}" asr --model "$system" --manifest "$data/synthetic/manifest.dev.jsonl" --sample 30 --out "$out/asr-$name-synth"
done
"${unispeech[@]}" speed --manifest "$data/ljspeech.dev.jsonl" --limit 10 --tts-clips 0 --out "$out/speed-asr"
"${unispeech[@]}" ger --nbest "$data"/nbest/{ljspeech,fsdd,synthetic}.dev.jsonl --out "$out/ger"
"${unispeech[@]}" tts --manifest "$data/ljspeech.dev.jsonl" --limit 10 --out "$out/tts-lj"
"${unispeech[@]}" tts --manifest "$data/ljspeech.dev.jsonl" --limit 3 --steps 16 --out "$out/tts-lj-nfe16"
"${unispeech[@]}" tts --manifest "$data/fsdd.dev.jsonl" --pairs eval/fsdd-dev-pairs.jsonl --out "$out/tts-fsdd"
