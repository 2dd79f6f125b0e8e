"""The converted SmolLM2 backbone: its answer to a simple prompt, and its perplexity on sentences
of the LJSpeech text corpus.

    .venv/bin/python eval/backbone.py --ljspeech ../shared/data/ljspeech --sentences 50
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from tqdm import tqdm

from unispeech.weights.pretrained import load_parts

PROMPT = "What is the capital of France? Answer in one sentence."


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ljspeech", type=Path, required=True, help="a folder with metadata.csv")
    parser.add_argument("--sentences", type=int, default=50, help="the first N sentences")
    parser.add_argument("--model", default="smol")
    parser.add_argument(
        "--start-token",
        help="token each sentence follows (default the tokenizer's bos; SmolLM2's "
        "pretraining documents start after <|endoftext|>)",
    )
    args = parser.parse_args()

    loaded = load_parts(args.model)
    backbone, tokenizer = loaded.model.backbone, loaded.processor.tokenizer
    messages = [{"role": "user", "content": PROMPT}]
    prompt = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    output = backbone.generate(**prompt, max_new_tokens=40, do_sample=False)
    print(f"prompt: {PROMPT}")
    print(
        f"answer: {tokenizer.decode(output[0, prompt['input_ids'].shape[1] :], skip_special_tokens=True)!r}"
    )

    start = tokenizer.convert_tokens_to_ids(args.start_token) if args.start_token else tokenizer.bos_token_id
    rows = (args.ljspeech / "metadata.csv").read_text().splitlines()[: args.sentences]
    total_loss, total_tokens = 0.0, 0
    for row in tqdm(rows, desc="sentences"):
        ids = [start, *tokenizer(row.split("|")[2], add_special_tokens=False)["input_ids"]]
        input_ids = torch.tensor([ids])
        loss = backbone(input_ids=input_ids, labels=input_ids).loss
        total_loss += loss.item() * (len(ids) - 1)
        total_tokens += len(ids) - 1
    perplexity = math.exp(total_loss / total_tokens)
    after = tokenizer.convert_ids_to_tokens(start)
    print(f"perplexity on {len(rows)} LJSpeech sentences ({total_tokens} tokens, each text after {after}):")
    print(f"{perplexity:.2f}")


if __name__ == "__main__":
    main()
