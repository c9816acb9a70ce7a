"""Learnable HQ/LQ text prompts (CLIP-LIT style, docs/facts.md §4).

Each prompt is ``n_tokens`` learnable token embeddings that replace the words of
"X X … X" between the start- and end-of-text tokens; CLIP's frozen text tower turns them
into features. Prompt order is (LQ, HQ) everywhere.
"""

from __future__ import annotations

import torch
from torch import nn

from .clip import Clip

__all__ = ["PromptPair"]


class PromptPair(nn.Module):
    """Two learnable prompts, LQ and HQ, initialised from the embedding of "X X … X".

    Attributes:
        ctx: (2, n_tokens, width) the learnable vectors (row 0 = LQ, row 1 = HQ).
        prefix, suffix: frozen embeddings of the start token and of end-of-text + padding.
        tokens: (1, L) token ids of the template (locate the end-of-text token).
    """

    def __init__(self, clip: Clip, n_tokens: int = 16, init_word: str = "X") -> None:
        super().__init__()
        ctx_len = clip.tokenize([""]).shape[1]
        if n_tokens + 2 > ctx_len:
            raise ValueError(f"{n_tokens} prompt tokens do not fit the text context of {ctx_len}")
        emb, tokens = clip.token_embeddings([" ".join([init_word] * n_tokens)])
        if int(tokens.argmax()) != n_tokens + 1:
            raise ValueError(f"'{init_word}' is not a single token for this tokenizer; choose another init word")
        self.n_tokens = n_tokens
        self.register_buffer("tokens", tokens)
        self.register_buffer("prefix", emb[:, :1].clone())
        self.register_buffer("suffix", emb[:, 1 + n_tokens :].clone())
        self.ctx = nn.Parameter(emb[:, 1 : 1 + n_tokens].clone().repeat(2, 1, 1))

    def embeddings(self) -> torch.Tensor:
        """Full token embeddings (2, L, width) of the two prompts."""
        return torch.cat([self.prefix.expand(2, -1, -1), self.ctx, self.suffix.expand(2, -1, -1)], dim=1)

    def forward(self, clip: Clip) -> torch.Tensor:
        """Unit-norm text features (2, D): row 0 LQ, row 1 HQ. Differentiable in ``ctx``."""
        return clip.encode_embeddings(self.embeddings(), self.tokens.expand(2, -1))
