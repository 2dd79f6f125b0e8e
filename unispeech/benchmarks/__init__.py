"""Benchmarks anyone can re-run on their own data: ASR word error rate, the TTS round trip, N-best
correction, and speed and memory side by side with openai-whisper base.

Each benchmark reads a manifest (or an N-best file), scores a *system* given to it as an object (so
tests can inject one whose outputs they control), and writes `report.md`, `report.json` and
`report.png` to a folder (`report.py`). The `unispeech eval asr|tts|ger|speed` commands
(`commands.py`: their flags and assembly) are thin layers over `asr.py`, `tts.py`, `ger.py` and
`speed.py`; `clips.py` reads manifests (skipping and counting what cannot be used) and `scoring.py`
counts errors. Nothing heavy is imported here.
"""
