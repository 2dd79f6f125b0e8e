"""Tasks: what the model is used for, each with its frozen options.

This layer owns running the model: the decoding loop over a KV cache (`decoding.py`: greedy or
beam search, guided by CTC prefix scores from `ctc_prefix.py`), speech recognition of recordings
of any length (`transcription.py`), zero-shot speech synthesis (`synthesis.py`), N-best
generative error correction (`correction.py`) and its baseline, rescoring by the backbone's LM
score (`rescoring.py`). It takes a loaded model; finding and loading one is `weights`' and the
facade's (`unispeech.api`).
"""
