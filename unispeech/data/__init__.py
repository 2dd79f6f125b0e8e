"""Data: speech corpora and what is made from them, on disk.

This layer owns the files the tools read and write: manifests (`manifest.py`, the JSON lines every
tool that reads speech reads), importers of corpora on disk (`importers.py`), synthetic speech
rendered by espeak-ng and Piper (`synthetic.py`), non-speech clips (`nonspeech.py`), noisy,
speed-perturbed copies of clips (`perturbation.py`), N-best lists (`nbest.py`), and the phoneme
durations of a corpus (`phoneme_durations.py`) found by the phoneme aligner (`aligner.py`). How a
training run reads them is `training`'s.
"""
