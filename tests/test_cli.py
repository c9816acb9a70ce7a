import pytest

from spikeclip_lite.__main__ import main


def test_samples_command_writes_manifest(tmp_path, capsys):
    assert main(["samples", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "manifest.json").exists()
    assert "manifest.json" in capsys.readouterr().out


def test_unknown_command_exits():
    with pytest.raises(SystemExit):
        main(["fly"])
