import numpy as np
import pytest
from conftest import write_bad_uhsr_files

from spikeclip_lite import io


def test_dat_round_trip(tmp_path, rng):
    s = (rng.random((7, 24, 40)) < 0.3).astype(np.uint8)
    p = io.write_dat(tmp_path / "a.dat", s)
    assert p.stat().st_size == 7 * 24 * 40 // 8
    assert np.array_equal(io.read_dat(p, 24, 40), s)


def test_dat_bit_layout_lsb_first_and_upside_down(tmp_path):
    """docs/facts.md §2: bit b of byte k is pixel 8k+b of the stored image, which is flipped vertically."""
    H, W = 4, 8
    raw = np.zeros(H * W // 8, np.uint8)
    raw[0] = 0b0000_0101  # stored pixels 0 and 2 (first stored row = last image row)
    raw[3] = 0b1000_0000  # stored pixel 31: last stored row, last column = image row 0, col 7
    (tmp_path / "x.dat").write_bytes(raw.tobytes())
    img = io.read_dat(tmp_path / "x.dat", H, W)[0]
    expected = np.zeros((H, W), np.uint8)
    expected[H - 1, 0] = expected[H - 1, 2] = 1
    expected[0, 7] = 1
    assert np.array_equal(img, expected)
    io.write_dat(tmp_path / "y.dat", img[None])
    assert (tmp_path / "y.dat").read_bytes() == raw.tobytes()


def test_default_geometry_is_250x400(tmp_path, rng):
    s = (rng.random((3, 250, 400)) < 0.1).astype(np.uint8)
    p = io.write_dat(tmp_path / "full.dat", s)
    assert p.stat().st_size == 3 * 12_500
    assert np.array_equal(io.read_dat(p), s)


def test_header_columns_are_dropped(tmp_path, rng):
    s = (rng.random((2, 250, 416)) < 0.5).astype(np.uint8)
    p = io.write_dat(tmp_path / "cam.dat", s)
    out = io.read_dat(p, 250, 400, header_columns=16)
    assert out.shape == (2, 250, 400)
    assert np.array_equal(out, s[:, :, 16:])


def test_truncated_dat_is_an_error(tmp_path, rng):
    s = (rng.random((3, 8, 16)) < 0.5).astype(np.uint8)
    p = io.write_dat(tmp_path / "t.dat", s)
    p.write_bytes(p.read_bytes()[:-1])
    with pytest.raises(ValueError, match="not a whole number of"):
        io.read_dat(p, 8, 16)


def test_dat_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.read_dat(tmp_path / "missing.dat")
    (tmp_path / "empty.dat").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        io.read_dat(tmp_path / "empty.dat")
    with pytest.raises(ValueError, match="only 0 and 1"):
        io.write_dat(tmp_path / "bad.dat", np.full((1, 8, 8), 2, np.uint8))
    with pytest.raises(ValueError, match="multiple of 8"):
        io.write_dat(tmp_path / "odd.dat", np.zeros((1, 3, 3), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        io.write_dat(tmp_path / "2d.dat", np.zeros((8, 8), np.uint8))


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_uhsr_round_trip_and_crop(tmp_path, rng):
    spk = (rng.random((200, 250, 250)) < 0.03).astype(np.uint8)
    p = io.write_uhsr(tmp_path / "0001.npz", spk, 47, "4144_helicopter.jpg")
    out, label = io.read_uhsr(p)
    assert out.shape == (200, 224, 224) and out.dtype == np.uint8 and label == 47
    assert np.array_equal(out, spk[:, 13:237, 13:237])
    full, _ = io.read_uhsr(p, crop=False)
    assert np.array_equal(full, spk)
    assert io.UCALTECH_CLASSES[label] == "helicopter"


def test_uhsr_errors(tmp_path):
    good = np.zeros((4, 250, 250), np.uint8)
    with pytest.raises(ValueError, match="lacks key"):
        io.read_uhsr(_write_npz(tmp_path / "a.npz", spikes=good, label=1))
    with pytest.raises(ValueError, match="shape"):
        io.read_uhsr(_write_npz(tmp_path / "b.npz", spk=np.zeros((4, 224, 224), np.uint8), label=1))
    with pytest.raises(ValueError, match="only 0 and 1"):
        io.read_uhsr(_write_npz(tmp_path / "c.npz", spk=good + 3, label=1))
    with pytest.raises(ValueError, match="label"):
        io.read_uhsr(_write_npz(tmp_path / "d.npz", spk=good, label=np.array([1, 2])))
    (tmp_path / "e.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        io.read_uhsr(tmp_path / "e.npz")
    with pytest.raises(FileNotFoundError):
        io.read_uhsr(tmp_path / "none.npz")


def test_class_lists():
    assert len(io.UCALTECH_CLASSES) == 101 and io.UCALTECH_CLASSES[47] == "helicopter"
    assert io.UCALTECH_CLASSES[0] == "accordion" and io.UCALTECH_CLASSES[-1] == "background"
    cifar = ("frog", "horse", "dog", "truck", "airplane", "automobile", "bird", "ship", "cat", "deer")
    assert io.UCIFAR_CLASSES == cifar


def test_bad_uhsr_files_are_named_before_anything_large_is_loaded(tmp_path, rng):
    for name, why in write_bad_uhsr_files(tmp_path, rng).items():
        with pytest.raises(ValueError, match=why):
            io.read_uhsr(tmp_path / name)


def test_uhsr_label_must_be_a_class_index(tmp_path, rng):
    spk = (rng.random((4, 250, 250)) < 0.05).astype(np.uint8)
    for label in (-1, 500):
        with pytest.raises(ValueError, match=f"label {label} is not a class index"):
            io.read_uhsr(io.write_uhsr(tmp_path / f"{label}.npz", spk, label), n_classes=101)
    assert io.read_uhsr(io.write_uhsr(tmp_path / "ok.npz", spk, 100), n_classes=101)[1] == 100


def test_dat_rejects_negative_header_and_leaves_no_tmp(tmp_path, rng):
    spikes = (rng.random((2, 8, 16)) < 0.5).astype(np.uint8)
    path = io.write_dat(tmp_path / "s.dat", spikes)
    with pytest.raises(ValueError, match="header_columns .* cannot be negative"):
        io.read_dat(path, 8, 32, header_columns=-16)
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        io.write_dat(tmp_path / "folder", spikes)
    assert not list(tmp_path.glob("*.tmp"))


def test_read_png_gray_scales_8_and_16_bit_and_turns_colour_grey(tmp_path):
    from PIL import Image

    grey = (np.arange(12, dtype=np.uint8).reshape(3, 4) * 20).astype(np.uint8)
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    assert np.allclose(io.read_png_gray(tmp_path / "g.png"), grey / 255)
    deep = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.png")
    assert np.allclose(io.read_png_gray(tmp_path / "d.png"), deep / 65535, atol=1e-6)
    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[..., 1] = 255  # pure green → luma 0.587
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "c.png")
    assert np.allclose(io.read_png_gray(tmp_path / "c.png"), 0.587, atol=1e-6)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="not a readable image"):
        io.read_png_gray(tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError):
        io.read_png_gray(tmp_path / "missing.png")
