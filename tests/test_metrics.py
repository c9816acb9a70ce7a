import numpy as np
import pytest
import torch

from spikeclip_lite import metrics


def test_psnr_known_value(rng):
    a = rng.random((16, 16))
    b = a + 0.1
    assert metrics.psnr(b, a) == pytest.approx(20.0, abs=1e-6)
    assert metrics.psnr(a, a) > 100


def test_ssim_identity_and_degradation(rng):
    a = rng.random((32, 32)).astype(np.float32)
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    noisy = np.clip(a + 0.3 * rng.standard_normal(a.shape), 0, 1)
    assert metrics.ssim(noisy, a) < 0.9


def test_ssim_is_wang_et_al_with_the_whole_2d_window(rng):
    """The separable computation equals SSIM written out with the 11×11 Gaussian window (a plain reference)."""
    a, b = rng.random((2, 20, 23)), rng.random((2, 20, 23))
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    want = []
    for x, y in zip(a, b, strict=True):
        vals = []
        for i in range(20 - 10):
            for j in range(23 - 10):
                px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * px * px).sum() - mx**2, (w * py * py).sum() - my**2
                cxy = (w * px * py).sum() - mx * my
                vals.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
        want.append(np.mean(vals))
    np.testing.assert_allclose(metrics.ssim(a, b), want, rtol=0, atol=1e-6)  # float32 out, float64 inside


def test_aligned_psnr_ignores_gain_and_offset(rng):
    a = rng.random((24, 24))
    assert metrics.aligned_psnr(0.2 * a + 0.05, a) > 100
    assert metrics.psnr(0.2 * a + 0.05, a) < 15


def test_batched_and_torch(rng):
    a = rng.random((3, 16, 16)).astype(np.float32)
    b = np.clip(a + 0.05, 0, 1)
    p = metrics.psnr(b, a)
    assert p.shape == (3,)
    t = metrics.ssim(torch.from_numpy(b), torch.from_numpy(a))
    assert isinstance(t, torch.Tensor) and t.shape == (3,)


def test_bad_inputs():
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="NaN"):
        metrics.psnr(np.full((4, 4), np.nan), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="at least"):
        metrics.ssim(np.zeros((4, 4)), np.zeros((4, 4)))


def test_texture_ratio_tells_noise_from_blur():
    import torch

    from spikeclip_lite import data
    from spikeclip_lite.metrics import lowpass

    gt = data.make_scene(3, size=64).image
    noisy = np.clip(gt + np.random.default_rng(0).normal(0, 0.1, gt.shape), 0, 1)
    blurred = lowpass(torch.from_numpy(gt)[None, None].float(), 2.0)[0, 0].numpy()
    assert metrics.texture_ratio(gt, gt) == pytest.approx(1.0)
    assert metrics.texture_ratio(0.5 * gt + 0.2, gt) == pytest.approx(1.0, abs=1e-6)  # brightness-free
    assert metrics.texture_ratio(noisy, gt) > 1.5  # extra texture
    assert metrics.texture_ratio(blurred, gt) < 0.5  # over-smoothed
    assert metrics.hf_share(np.full((16, 16), 0.3)) == 0.0  # a flat image has no texture
    batch = metrics.texture_ratio(np.stack([noisy, blurred]), np.stack([gt, gt]))
    assert batch.shape == (2,) and batch[0] > 1.5 > 0.5 > batch[1]
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.texture_ratio(gt, gt[:10])


def test_sharpen_raises_the_texture_ratio_and_keeps_the_low_frequencies():
    import torch

    from spikeclip_lite import data
    from spikeclip_lite.metrics import lowpass

    gt = data.make_scene(3, size=64).image
    soft = lowpass(torch.from_numpy(gt)[None, None].float(), 1.0)[0, 0].numpy()
    ratios = [float(metrics.texture_ratio(metrics.sharpen(soft, a), gt)) for a in (0.0, 1.0, 3.0)]
    assert ratios[0] == pytest.approx(float(metrics.texture_ratio(soft, gt)))  # amount 0: unchanged
    assert ratios[0] < ratios[1] < ratios[2]
    sharp = metrics.sharpen(torch.from_numpy(np.stack([soft, soft])), 2.0)  # a batch, torch in → torch out
    assert isinstance(sharp, torch.Tensor) and sharp.shape == (2, 64, 64)
    change = sharp[0] - torch.from_numpy(soft)
    assert float(change.abs().mean()) > 1e-3 and abs(float(change.mean())) < 1e-4  # detail added, brightness kept
    with pytest.raises(ValueError, match="amount must be"):
        metrics.sharpen(soft, -1.0)
    with pytest.raises(TypeError, match="uint8"):
        metrics.sharpen((soft * 255).astype(np.uint8), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        metrics.sharpen(np.full((8, 8), np.nan), 1.0)


def test_scores_refuse_empty_and_integer_images():
    with pytest.raises(ValueError, match="image is empty"):
        metrics.psnr(np.zeros((0, 8, 8)), np.zeros((0, 8, 8)))
    img = (np.random.default_rng(0).random((8, 8)) * 255).astype(np.uint8)
    with pytest.raises(TypeError, match="uint8.*img / 255"):
        metrics.psnr(img, img)


def test_ssim_uniform_is_scikit_image_structural_similarity(rng):
    from skimage.metrics import structural_similarity

    a = rng.random((40, 50)).astype(np.float64)
    b = np.clip(a + 0.1 * rng.standard_normal((40, 50)), 0, 1)
    assert float(metrics.ssim_uniform(a, b)) == pytest.approx(structural_similarity(a, b, data_range=1.0), abs=1e-9)
    assert abs(float(metrics.ssim_uniform(a, b)) - float(metrics.ssim(a, b))) > 1e-3  # a different SSIM
