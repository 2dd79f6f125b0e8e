"""Training: a recipe in, a trained task adapter out, never losing a run.

This layer owns the training run: the YAML recipe (`recipes.py`), its sources turned into a seeded
stream of batches (`data.py`) in length buckets (`buckets.py`), the on-disk cache of frozen-encoder
outputs (`feature_cache.py`), time masks on cached speech (`augmentation.py`), atomic, verified
checkpoints (`checkpoints.py`) and the trainer that drives it all with accelerate (`trainer.py`).
"""
