import json

import numpy as np
import pytest

from spikeclip_lite import io, samples


def test_shipped_samples_are_small_and_described():
    root = samples.DEFAULT_DIR
    manifest = json.loads((root / "manifest.json").read_text())
    readme = (root / "README.md").read_text()
    assert set(manifest) == {s.name for s in samples.SAMPLES}
    for path in root.iterdir():
        assert path.stat().st_size <= 1_000_000, path
    for name, info in manifest.items():
        assert info["file"] in readme and info["ground_truth"] in readme, name


def test_samples_regenerate_bit_for_bit(tmp_path):
    samples.make_samples(tmp_path)
    shipped = json.loads((samples.DEFAULT_DIR / "manifest.json").read_text())
    fresh = json.loads((tmp_path / "manifest.json").read_text())
    assert fresh == shipped
    for name in shipped:
        a, ta, _ = samples.load_sample(name)
        b, tb, _ = samples.load_sample(name, tmp_path)
        assert np.array_equal(a, b) and np.array_equal(ta, tb)
        assert samples.spikes_sha256(a) == shipped[name]["spikes_sha256"]


def test_load_sample_formats():
    s, truth, info = samples.load_sample("star_moving_lowlight_uhsr")
    assert s.shape == (200, 250, 250) and truth.shape == (250, 250)
    cropped, label = io.read_uhsr(samples.DEFAULT_DIR / info["file"])
    assert cropped.shape == (200, 224, 224)
    assert 0.015 < s.mean() < 0.05  # low light
    with pytest.raises(ValueError, match="unknown sample"):
        samples.load_sample("nope")
