"""Interfaces: the ways in for people and other programs, over the facade (`unispeech.api`).

This layer owns the `unispeech` command (`cli.py`, with the flags its subcommands share in
`flags.py`), the Hugging Face pipelines (`pipelines.py`; importing it registers them) and the
Gradio demo (`demo.py`). They parse, call and present; the work is done in the layers below.
"""
