"""The learnable HQ/LQ prompt pair."""

import pytest
import torch
import torch.nn.functional as F

from spikeclip_lite import losses, prompts


def unit(*shape):
    return F.normalize(torch.randn(*shape), dim=-1)


def test_prompt_pair_starts_at_x_and_learns(tiny_clip):
    pair = prompts.PromptPair(tiny_clip, n_tokens=16)
    assert pair.ctx.shape == (2, 16, tiny_clip.token_width)
    feats = pair(tiny_clip)
    ref = tiny_clip.encode_text([" ".join(["X"] * 16)])
    torch.testing.assert_close(feats, ref.expand(2, -1), atol=1e-5, rtol=1e-4)
    assert [k for k, v in pair.named_parameters()] == ["ctx"]  # CLIP's weights are not part of it
    img = unit(4, feats.shape[1])
    loss = losses.prompt_init_loss(img, pair(tiny_clip), torch.tensor([True, False, True, False]))
    loss.backward()
    assert pair.ctx.grad is not None and pair.ctx.grad.abs().sum() > 0


def test_prompt_pair_too_long(tiny_clip):
    with pytest.raises(ValueError, match="do not fit"):
        prompts.PromptPair(tiny_clip, n_tokens=40)
