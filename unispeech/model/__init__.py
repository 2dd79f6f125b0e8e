"""The model: one backbone that listens and speaks, and what it is made of.

This layer owns the unified speech LM and its parts: the configuration, the Whisper encoder, the
projector, the task markers, the attention masks, the flow-matching TTS head, the CTC head, the
length arithmetic every part shares (`lengths.py`), the task registry and sequence layouts
(`sequences.py`), the phoneme table TTS reads (`phonemes.py`), the processor that turns samples
into one padded batch, the task adapters (LoRA plus task modules) on the frozen backbone, and
the backbone's fp16 weight packing for CPU inference (`cpu_weights.py`).
Where pretrained weights come from is `weights`', running a task end to end is `tasks`'; of
the layers, it builds on `audio` only.
"""
