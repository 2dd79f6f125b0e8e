"""Attention masks and position ids: pure functions, nothing model-specific.

One backbone serves both directions of speech. Text and ASR speech are causal; the TTS speech span
(the time token and the mel positions) changes at every ODE step and is bidirectional inside
itself, while still seeing the causal text before it. Every mask here is a 4D additive float mask
`(B, 1, Q, K)`: 0 where a query may attend to a key, `torch.finfo(dtype).min` where it may not,
which transformers passes as-is to both `sdpa` and `eager` attention. The queries are the last `Q`
of the `K` positions, so the same function builds the mask of a full forward (Q = K), of a step
over a KV cache, and of a TTS span over a cached text prefix.

Shapes: `B` batch, `K` key positions (everything so far), `Q` query positions (the newest ones).
"""

from __future__ import annotations

import torch


def span_ids(bidirectional_mask: torch.Tensor) -> torch.Tensor:
    """Number each contiguous run of True in `(B, K)` as 1, 2, …; positions outside runs get 0."""
    mask = bidirectional_mask.bool()
    previous = torch.nn.functional.pad(mask[:, :-1], (1, 0), value=False)
    starts = mask & ~previous
    return torch.cumsum(starts, dim=1) * mask


def dual_attention_mask(
    attention_mask: torch.Tensor,
    bidirectional_mask: torch.Tensor | None = None,
    hidden_from_span: torch.Tensor | None = None,
    query_length: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The causal-plus-bidirectional-span mask, `(B, 1, Q, K)` additive float.

    Args:
        attention_mask: `(B, K)`, 1 for real positions, 0 for padding (left or right).
        bidirectional_mask: `(B, K)`, True for positions of a bidirectional span; each contiguous
            run is its own span. Positions in a span see every position of that span, and the
            causal past before it. None: everything is causal.
        hidden_from_span: `(B, K)`, True for keys that span positions must not see (the text of a
            sample whose text condition is dropped for classifier-free guidance).
        query_length: the queries are the last `Q` positions; default all `K`.

    Padding keys are never visible, except each padding query's own key, so that no row is fully
    blocked (which would turn softmax into NaN); a padding position's output is meaningless.
    """
    batch, keys = attention_mask.shape
    queries = keys if query_length is None else query_length
    if not 0 < queries <= keys:
        raise ValueError(f"query_length must be in [1, {keys}], got {queries}")
    valid = attention_mask.bool()
    key_index = torch.arange(keys, device=valid.device)
    query_index = key_index[keys - queries :]
    allowed = key_index[None, :] <= query_index[:, None]  # (Q, K) causal
    allowed = allowed[None].expand(batch, queries, keys)
    if bidirectional_mask is not None:
        span = span_ids(bidirectional_mask)  # (B, K)
        query_span = span[:, keys - queries :]  # (B, Q)
        same_span = (query_span[:, :, None] == span[:, None, :]) & (query_span[:, :, None] > 0)
        allowed = allowed | same_span
        if hidden_from_span is not None:
            allowed = allowed & ~((query_span[:, :, None] > 0) & hidden_from_span.bool()[:, None, :])
    allowed = allowed & valid[:, None, :]
    padding_query = ~valid[:, keys - queries :]  # (B, Q)
    allowed = allowed | (padding_query[:, :, None] & (query_index[:, None] == key_index[None, :]))
    blocked = torch.finfo(dtype).min
    return torch.zeros(allowed.shape, dtype=dtype, device=valid.device).masked_fill(~allowed, blocked)[
        :, None
    ]


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions `(B, K)` counting real tokens only, so left padding does not shift them (pads get 0)."""
    positions = torch.cumsum(attention_mask.long(), dim=1) - 1
    return positions.clamp(min=0)
