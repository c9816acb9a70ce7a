"""The losses: class loss, prompt losses, the TFI / anchor L1 and its low-pass."""

import pytest
import torch
import torch.nn.functional as F

from spikeclip_lite import losses


def unit(*shape):
    return F.normalize(torch.randn(*shape), dim=-1)


def test_class_loss_prefers_the_right_class():
    txt = unit(10, 8)
    labels = torch.arange(10)
    good = losses.class_loss(txt, txt, labels, 100.0)
    bad = losses.class_loss(txt.roll(1, 0), txt, labels, 100.0)
    assert good < 0.1 < bad


def test_class_loss_stops_pushing_images_the_guide_already_names():
    txt = unit(10, 8)
    labels = torch.arange(10)
    named = txt.clone().requires_grad_(True)  # each image is its own class's text: P(class) ≈ 1
    wrong = txt.roll(1, 0).clone().requires_grad_(True)
    floor = -torch.log(torch.tensor(0.9))
    capped = losses.class_loss(named, txt, labels, 100.0, enough=0.9)
    assert float(capped.detach()) == pytest.approx(float(floor))  # every image is past 0.9: the loss sits at its floor
    capped.backward()
    assert named.grad.abs().max() == 0  # … and pushes no further
    plain = losses.class_loss(wrong, txt, labels, 100.0)
    capped_wrong = losses.class_loss(wrong, txt, labels, 100.0, enough=0.9)
    assert float(capped_wrong.detach()) == pytest.approx(float(plain.detach()))
    capped_wrong.backward()
    assert wrong.grad.abs().max() > 0  # images the guide does not name still get the full gradient
    with pytest.raises(ValueError, match="probability"):
        losses.class_loss(txt, txt, labels, 100.0, enough=0.0)


def test_prompt_losses():
    hq_dir, lq_dir = unit(1, 8), unit(1, 8)
    prompts_ = torch.cat([lq_dir, hq_dir])  # (LQ, HQ)
    imgs = torch.cat([hq_dir, lq_dir])
    p = losses.hq_probability(imgs, prompts_)
    assert p[0] > 0.9 and p[1] < 0.1
    assert losses.prompt_init_loss(imgs, prompts_, torch.tensor([True, False])) < 0.2
    assert losses.prompt_init_loss(imgs, prompts_, torch.tensor([False, True])) > 2
    assert losses.prompt_loss(hq_dir, prompts_) < losses.prompt_loss(lq_dir, prompts_)


def test_warmup_loss():
    a = torch.zeros(2, 1, 4, 4)
    assert losses.warmup_loss(a, a + 0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="differ"):
        losses.warmup_loss(a, torch.zeros(2, 1, 4, 5))


def test_lowpass_and_blurred_warmup():
    from spikeclip_lite.losses import warmup_loss
    from spikeclip_lite.metrics import lowpass

    flat = torch.full((2, 1, 16, 16), 0.3)
    torch.testing.assert_close(lowpass(flat, 1.5), flat)  # a constant passes unchanged (borders too)
    noise = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    assert lowpass(noise, 1.5).std() < 0.5 * noise.std()
    assert lowpass(noise, 0) is noise
    # against a noisy copy of a smooth image, the blurred L1 mostly ignores the noise
    smooth = lowpass(torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(1)), 4)
    noisy = smooth + 0.2 * (torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(2)) - 0.5)
    assert warmup_loss(smooth, noisy, blur=2.0) < 0.3 * warmup_loss(smooth, noisy)


def test_log_prompt_loss_keeps_its_gradient_where_the_prob_loss_saturates():
    torch.manual_seed(0)
    prompts_ = unit(2, 16)
    # an image the prompts are sure is LQ: its feature is the LQ prompt's
    img = prompts_[:1].clone().requires_grad_(True)
    grads = {}
    for form in ("prob", "log"):
        img.grad = None
        losses.prompt_loss(img, prompts_, 100.0, form).backward()
        grads[form] = img.grad.norm().item()
    assert losses.hq_probability(img.detach(), prompts_).item() < 1e-6
    assert grads["prob"] < 1e-4 < 10 < grads["log"]  # saturated vs non-saturating
    with pytest.raises(ValueError, match="'prob' or 'log'"):
        losses.prompt_loss(img, prompts_, 100.0, "hinge")
