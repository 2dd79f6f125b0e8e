"""Evaluation: how good a transcript is, and whether the ASR model listens.

This layer owns the measures: word (or character) error rate after Whisper's text normalisers
(`metrics.py`), and the reliance check, the loss of transcripts with their own speech, another
clip's and none (`reliance.py`). It sits below the tasks because correction's no-harm gate scores
with the same error rate. The benchmarks that run these measures over whole corpora and write
reports are `unispeech.benchmarks`.
"""
