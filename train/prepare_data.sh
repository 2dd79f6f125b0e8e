#!/usr/bin/env bash
# Builds every manifest the smol recipes train and evaluate on, from ../shared/data and synthetic
# speech, into $DATA (default ../data beside the checkout). Re-running it redoes nothing that is done.
#
#   bash train/prepare_data.sh            # imports, splits, the synthetic corpus
#
# Dev sides (never trained on): LJ001 by utterance (20 %), FSDD by speaker (10 %), Kathleen by
# utterance (10 %), Kerstin (German) by utterance (15 %), the 251 LibriSpeech speakers by speaker (20 %), synthetic by utterance (5 %); the synthetic text excludes every LJ001 sentence, so LJ001 dev text is unseen too.
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
[ -f "$DATA/kathleen.jsonl" ] || $unispeech data import folder "$SHARED/kathleen" --speaker kathleen \
    --manifest "$DATA/kathleen.jsonl"
[ -f "$DATA/kathleen.dev.jsonl" ] || $unispeech data split --manifest "$DATA/kathleen.jsonl" --by utterance --dev-fraction 0.1
[ -f "$DATA/libri251.jsonl" ] || $unispeech data import folder "$SHARED/librispeech-speakers" --speaker-from name \
    --manifest "$DATA/libri251.jsonl"
[ -f "$DATA/libri251.dev.jsonl" ] || $unispeech data split --manifest "$DATA/libri251.jsonl" --by speaker --dev-fraction 0.2
# what ASR must answer with nothing (empty transcripts); another seed for the dev side
$unispeech data nonspeech --out "$DATA/nonspeech" --count 450 --seed 0
$unispeech data nonspeech --out "$DATA/nonspeech-dev" --count 90 --seed 1
# phoneme durations of every real clip (train and dev: the aligner learns without labels), for TTS
[ -f "$DATA/alignment/durations.jsonl" ] || $unispeech data align --out "$DATA/alignment" \
    --manifest "$DATA/ljspeech.jsonl" "$DATA/kathleen.jsonl" "$DATA/libri251.jsonl"
# German (issue 22): Kerstin by utterance (15 %), its durations, espeak-ng's German voices on the
# train side's sentences and on 4 000 others (for ASR)
[ -f "$DATA/kerstin.jsonl" ] || $unispeech data import folder "$SHARED/kerstin" --lang de --speaker kerstin \
    --manifest "$DATA/kerstin.jsonl"
[ -f "$DATA/kerstin.dev.jsonl" ] || $unispeech data split --manifest "$DATA/kerstin.jsonl" --by utterance --dev-fraction 0.15
[ -f "$DATA/alignment-de/durations.jsonl" ] || $unispeech data align --out "$DATA/alignment-de" \
    --manifest "$DATA/kerstin.jsonl"
[ -f "$DATA/kerstin.train.txt" ] || .venv/bin/python -c "import json, sys; print(*(json.loads(l)['text'] for l in open(sys.argv[1])), sep='\n')" \
    "$DATA/kerstin.train.jsonl" > "$DATA/kerstin.train.txt"
[ -f "$DATA/synth-de/manifest.jsonl" ] || $unispeech data synth --text "$DATA/kerstin.train.txt" --languages de \
    --out "$DATA/synth-de" --count 1500 --workers 2
# other German sentences in the same voices, so that German ASR learns German, not 332 sentences:
# Debian's fortunes-de (real German prose; no German corpus is on PyPI)
[ -d /usr/share/games/fortunes/de ] || apt-get install -y -qq fortunes-de >/dev/null
[ -f "$DATA/fortunes-de.txt" ] || .venv/bin/python train/fortune_sentences.py --exclude "$DATA/kerstin.dev.jsonl" \
    --out "$DATA/fortunes-de.txt"
[ -f "$DATA/synth-de-fortunes/manifest.jsonl" ] || $unispeech data synth --text "$DATA/fortunes-de.txt" --languages de \
    --out "$DATA/synth-de-fortunes" --count 4000 --workers 2
# the other 13 218 sentences, each once (stage 2 of the German ASR adapter: smol-asr-de-stage2.yaml)
[ -f "$DATA/fortunes-de.rest.txt" ] || .venv/bin/python train/fortune_sentences.py \
    --exclude "$DATA/kerstin.dev.jsonl" "$DATA/synth-de-fortunes/manifest.jsonl" --out "$DATA/fortunes-de.rest.txt"
[ -f "$DATA/synth-de-fortunes-2/manifest.jsonl" ] || $unispeech data synth --text "$DATA/fortunes-de.rest.txt" \
    --languages de --out "$DATA/synth-de-fortunes-2" --workers 2
# two speed-perturbed, noisy copies of each real English train clip (smol-asr-perturbed.yaml)
for name in kathleen ljspeech libri251; do
    [ -f "$DATA/$name.train.perturbed/manifest.jsonl" ] || $unispeech data perturb --manifest "$DATA/$name.train.jsonl" \
        --out "$DATA/$name.train.perturbed" --copies 2 --snr-db 10 30 --speed 0.9 1.1
done
# the trainer's periodic dev set: 8 clips spread over each real English dev side
[ -f "$DATA/asr-dev24.jsonl" ] || for name in ljspeech kathleen libri251; do
    awk -v n="$(wc -l < "$DATA/$name.dev.jsonl")" 'NR == 1 + int(k * n / 8) {print; k++}' "$DATA/$name.dev.jsonl"
done > "$DATA/asr-dev24.jsonl"

$unispeech data synth --text "$SHARED/ljspeech/metadata.csv" --exclude-ids LJ001 \
    --out "$DATA/synthetic" --count "$SYNTH_COUNT" --workers 2
[ -f "$DATA/synthetic/manifest.dev.jsonl" ] || \
    $unispeech data split --manifest "$DATA/synthetic/manifest.jsonl" --by utterance --dev-fraction 0.05

# N-best lists of whisper-base for GER (slow on a CPU: seconds a clip), only with NBEST=1.
# Train sides get augmentation (noise + speed) so the lists hold real errors; dev sides stay clean
# except FSDD's, whose digits are already hard for whisper-base.
if [ "${NBEST:-0}" = 1 ]; then
    mkdir -p "$DATA/nbest"
    nbest() { # name manifest augment [limit]; resumes: decoded utterances are skipped
        $unispeech data nbest --manifest "$2" -o "$DATA/nbest/$1.jsonl" --augment "$3" ${4:+--limit $4}
    }
    nbest ljspeech.train "$DATA/ljspeech.train.jsonl" 0.5
    nbest ljspeech.dev "$DATA/ljspeech.dev.jsonl" 0
    nbest fsdd.train "$DATA/fsdd.train.jsonl" 0.5 600
    nbest fsdd.dev "$DATA/fsdd.dev.jsonl" 0.5 200
    nbest synthetic.train "$DATA/synthetic/manifest.train.jsonl" 0.3 1500
    nbest synthetic.dev "$DATA/synthetic/manifest.dev.jsonl" 0.3 200
    # clean train lists beside the augmented ones: a corrector that never saw a right 1-best
    # rewrites clean transcripts (train/RUNS.md, GER run 1)
    nbest ljspeech.train.clean "$DATA/ljspeech.train.jsonl" 0
    nbest synthetic.train.clean "$DATA/synthetic/manifest.train.jsonl" 0 1500
fi
