"""Checkpoint files: atomic writes, weights-only loads, corrupt files named and set aside."""

import warnings

import pytest
import torch

from spikeclip_lite import checkpoints


def test_checkpoint_is_atomic_and_weights_only(tmp_path):
    checkpoints.save_checkpoint(tmp_path / "x.pt", modules={"a": {"w": torch.ones(2)}}, step=3)
    assert not list(tmp_path.glob("*.tmp"))
    assert checkpoints.load_checkpoint(tmp_path / "x.pt")["step"] == 3


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    from fractions import Fraction  # any pickled class outside weights_only's allowlist

    torch.save({"step": Fraction(1, 3)}, tmp_path / "evil.pt")
    with pytest.raises(checkpoints.CorruptCheckpointError, match=r"evil\.pt cannot be read"):
        checkpoints.load_checkpoint(tmp_path / "evil.pt")


def test_an_interrupted_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "x.pt"
    checkpoints.save_checkpoint(path, step=1)

    def fail(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        checkpoints.atomic_write(path, fail)
    assert checkpoints.load_checkpoint(path)["step"] == 1
    assert not path.with_name("x.pt.tmp").exists()  # the half-written file is removed


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        checkpoints.load_checkpoint(tmp_path / "none.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert checkpoints.load_or_set_aside(tmp_path / "none.pt") is None  # absent: no warning
    (tmp_path / "bad.pt").write_bytes(b"not a zip")
    with pytest.warns(UserWarning, match="Moved it to bad.pt.corrupt"):
        assert checkpoints.load_or_set_aside(tmp_path / "bad.pt") is None
    assert (tmp_path / "bad.pt.corrupt").exists() and not (tmp_path / "bad.pt").exists()
