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

"${unispeech[@]}" asr --model whisper-base --manifest "$data/ljspeech.dev.jsonl" --out "$out/asr-whisper-lj"
"${unispeech[@]}" asr --model whisper-base --manifest "$data/fsdd.dev.jsonl" --sample 100 --out "$out/asr-whisper-fsdd"
"${unispeech[@]}" asr --model whisper-base --manifest "$data/ljspeech.dev.jsonl" --limit 10 --out "$out/asr-whisper-lj10"
"${unispeech[@]}" asr --model smol --manifest "$data/ljspeech.dev.jsonl" --limit 10 --out "$out/asr-smol-lj"
"${unispeech[@]}" ger --nbest "$nbest" --limit 8 --out "$out/ger"
"${unispeech[@]}" speed --manifest "$data/ljspeech.dev.jsonl" --limit 3 --tts-clips 1 --nfe 8,16,32 --out "$out/speed"
"${unispeech[@]}" tts --manifest "$data/ljspeech.dev.jsonl" --limit 2 --steps 8 --out "$out/tts"
