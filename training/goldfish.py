"""Goldfish loss: leave a deterministic ~1/k of token positions out of the loss.

The position whose label is predicted from the input tokens t[i-h+1..i] is dropped when a hash of
those h tokens is 0 modulo k. The choice depends on the text only (not on the position, the rank,
the step or a seed), so the same passage repeated anywhere in the data always loses the same
positions and the model never sees the full passage as a training target, which is what curbs
verbatim memorisation (Hans et al., 2024; used by Apertus). The first h-1 positions of a sequence
have fewer than h preceding tokens and are always kept.

The hash is a polynomial over the h token ids modulo the Mersenne prime 2^31-1, followed by a
multiplicative mix: integer arithmetic in int64, identical on every device and platform.
"""

from __future__ import annotations

import torch

_MOD = (1 << 31) - 1
_BASE = 1_000_003
_MIX = 2_654_435_761  # Knuth's multiplicative constant (odd, below 2^32)


def _powers(h: int, device: torch.device) -> torch.Tensor:
    out, p = [], 1
    for _ in range(h):
        out.append(p)
        p = p * _BASE % _MOD
    return torch.tensor(out[::-1], dtype=torch.int64, device=device)


def window_hash(tokens: torch.Tensor, h: int) -> torch.Tensor:
    """[b, s-h+1] int64 hashes of every window of h consecutive tokens of `tokens` [b, s]."""
    windows = tokens.to(torch.int64).unfold(1, h, 1)  # [b, s-h+1, h]
    # ids < 2^31 and weights < 2^31 would overflow in a plain sum; reduce each term first.
    terms = (windows % _MOD) * _powers(h, tokens.device) % _MOD
    x = terms.sum(-1) % _MOD
    x = x ^ (x >> 15)
    return (x * _MIX) & 0xFFFFFFFF


def keep_mask(tokens: torch.Tensor, k: int, h: int) -> torch.Tensor:
    """[b, s] float mask: 0 at the positions the goldfish loss drops, 1 elsewhere."""
    if tokens.dim() != 2:
        raise ValueError(f"goldfish: tokens must be [batch, seq], got shape {tuple(tokens.shape)}")
    b, s = tokens.shape
    keep = torch.ones(b, s, dtype=torch.float32, device=tokens.device)
    if s >= h:
        keep[:, h - 1 :] = (window_hash(tokens, h) % k != 0).to(torch.float32)
    return keep
