import numpy as np
import pytest
import torch

from spikeclip_lite import models


def test_voxelize_sums_groups_of_four(rng):
    s = (rng.random((200, 6, 7)) < 0.3).astype(np.uint8)
    v = models.voxelize(s)
    assert v.shape == (50, 6, 7) and v.dtype == np.float32
    np.testing.assert_array_equal(v[3], s[12:16].sum(0))
    assert v.max() <= 4
    vb = models.voxelize(torch.from_numpy(np.stack([s, s])))
    assert vb.shape == (2, 50, 6, 7)


def test_voxelize_errors():
    with pytest.raises(ValueError, match="equal bins"):
        models.voxelize(np.zeros((201, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="only 0 and 1"):
        models.voxelize(np.full((200, 4, 4), 3, np.uint8))


def test_voxel_rate_is_tfp_over_the_middle_frames(rng):
    from spikeclip_lite import baselines

    spikes = (rng.random((3, 200, 6, 7)) < 0.1).astype(np.uint8)
    vox = torch.from_numpy(models.voxelize(spikes))
    rate = models.voxel_rate(vox, half_window=24)  # 6 bins each side of frame 100: frames 76–123
    assert rate.shape == (3, 1, 6, 7)
    np.testing.assert_allclose(rate[:, 0].numpy(), spikes[:, 76:124].mean(1), atol=1e-6)
    np.testing.assert_allclose(models.voxel_rate(vox, 100)[:, 0].numpy(), baselines.tfp(spikes), atol=1e-6)
    with pytest.raises(ValueError, match="longer"):
        models.voxel_rate(vox, 120)
    with pytest.raises(ValueError, match="shape"):
        models.voxel_rate(vox[0], 24)


def test_lrn_matches_the_paper():
    net = models.LRN()
    assert models.count_parameters(net) == models.N_PARAMS == 185_889
    keys = list(net.state_dict())
    assert keys == [
        "0.0.weight",
        "0.0.bias",
        "1.0.weight",
        "1.0.bias",
        "2.0.weight",
        "2.0.bias",
        "3.0.weight",
        "3.0.bias",
        "4.weight",
        "4.bias",
    ]
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(50, 64), (64, 128), (128, 64), (64, 16), (16, 1)]
    assert all(c.kernel_size == (3, 3) and c.stride == (1, 1) and c.padding == (1, 1) for c in convs)


def test_released_checkpoint_layout_loads_strictly():
    """A state dict saved by the authors' Sequential-of-Sequentials loads with strict=True."""
    block = lambda i, o: torch.nn.Sequential(torch.nn.Conv2d(i, o, 3, 1, 1), torch.nn.ReLU())  # noqa: E731
    theirs = torch.nn.Sequential(
        block(50, 64), block(64, 128), block(128, 64), block(64, 16), torch.nn.Conv2d(16, 1, 3, 1, 1)
    )
    net = models.LRN()
    net.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.rand(1, 50, 9, 11)
    torch.testing.assert_close(net(x), theirs(x))


def test_lrn_any_size_and_bad_input():
    net = models.LRN()
    assert net(torch.rand(2, 50, 13, 21)).shape == (2, 1, 13, 21)
    with pytest.raises(ValueError, match="voxels"):
        net(torch.rand(2, 3, 8, 8))


def _released_style_state_dict():
    block = lambda i, o: torch.nn.Sequential(torch.nn.Conv2d(i, o, 3, 1, 1), torch.nn.ReLU())  # noqa: E731
    net = torch.nn.Sequential(
        block(50, 64), block(64, 128), block(128, 64), block(64, 16), torch.nn.Conv2d(16, 1, 3, 1, 1)
    )
    return net.state_dict()


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "module"])
def test_load_lrn_handles_released_layouts(tmp_path, wrap):
    sd = _released_style_state_dict()
    if wrap == "state_dict":
        sd = {"state_dict": sd}
    elif wrap == "module":
        sd = {f"module.{k}": v for k, v in sd.items()}
    torch.save(sd, tmp_path / "ckpt.pth")
    lrn = models.load_lrn(tmp_path / "ckpt.pth")
    assert models.count_parameters(lrn) == 185_889


def test_load_lrn_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        models.load_lrn(tmp_path / "none.pth")
    torch.save({"0.0.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not an LRN"):
        models.load_lrn(tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable"):
        models.load_lrn(tmp_path / "junk.pth")


def test_reflect_padding_computes_every_pixel_from_the_scene():
    """pad="reflect": the outer pixels come from the mirrored scene, never from zeros, with the same weights."""
    torch.manual_seed(0)
    zero = models.LRN()
    mirrored = models.LRN(pad="reflect")
    mirrored.load_state_dict(zero.state_dict())  # padding is no weight: the same state dict loads
    with torch.no_grad():
        flat = torch.ones(1, 50, 24, 24)
        assert float(zero(flat).std()) > 1e-4  # zero padding: a uniform scene gets a frame
        assert float(mirrored(flat).std()) < 1e-6  # mirrored: uniform, as the scene
        x = torch.rand(2, 50, 20, 17)
        r = models.RECEPTIVE_RADIUS
        by_hand = zero(torch.nn.functional.pad(x, (r,) * 4, mode="reflect"))[..., r:-r, r:-r]
        torch.testing.assert_close(mirrored(x), by_hand)
        assert mirrored(x).shape == (2, 1, 20, 17)
        # the interior, beyond the radius from every edge, is the same either way
        torch.testing.assert_close(mirrored(x)[..., r:-r, r:-r], zero(x)[..., r:-r, r:-r])
    with pytest.raises(ValueError, match="reflect padding by 5 px needs frames larger"):
        mirrored(torch.rand(1, 50, 5, 40))
    with pytest.raises(ValueError, match="pad is one of"):
        models.LRN(pad="mirror")


def test_a_window_with_context_is_the_frames_own_output_there():
    """context=True: a window carrying r pixels of the frame a side gives the frame's output on its inner
    pixels, and the same gradients as the whole frame's output cropped (what training on windows relies on)."""
    torch.manual_seed(0)
    lrn, r = models.LRN(pad="reflect"), models.RECEPTIVE_RADIUS
    x = torch.rand(2, 50, 32, 28)
    padded = torch.nn.functional.pad(x, (r,) * 4, mode="reflect")
    top, left, size = 7, 3, 12
    window = padded[..., top : top + size + 2 * r, left : left + size + 2 * r]
    out = lrn(window, context=True)
    assert out.shape == (2, 1, size, size)
    whole = lrn(x)[..., top : top + size, left : left + size]
    torch.testing.assert_close(out, whole)
    out.square().mean().backward()
    grads = [p.grad.clone() for p in lrn.parameters()]
    lrn.zero_grad()
    whole = lrn(x)[..., top : top + size, left : left + size]
    whole.square().mean().backward()
    for got, want in zip(grads, (p.grad for p in lrn.parameters()), strict=True):
        torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="must be larger than 10 px"):
        lrn(torch.rand(1, 50, 10, 30), context=True)
    with pytest.raises(ValueError, match="context=True needs pad='reflect'"):
        models.LRN()(window, context=True)


def test_load_lrn_builds_the_padding_it_is_told(tmp_path):
    torch.manual_seed(0)
    trained = models.LRN(pad="reflect")
    path = models.save_lrn(trained, tmp_path / "course.pth")  # a state dict: no padding in it
    x = torch.rand(1, 50, 16, 16)
    with torch.no_grad():
        assert models.load_lrn(path).pad == "zero"  # the released weights' default
        torch.testing.assert_close(models.load_lrn(path, pad="reflect")(x), trained(x))
