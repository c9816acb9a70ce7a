import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.fail("ruff is not installed: pip install -e '.[dev]'")
    res = subprocess.run(
        [ruff, "check", "spikeclip_lite", "tests", "benchmarks", "notebooks"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_project_cites_only_what_it_ships():
    """Facts are cited from docs/facts.md (in the repo, with primary sources), never from a spec outside it."""
    import re

    assert (ROOT / "docs" / "facts.md").is_file()
    offenders = []
    for pattern in ("*.py", "*.ipynb", "*.md"):
        for path in ROOT.rglob(pattern):
            if any(part in (".venv", "outputs", ".git", "node_modules") for part in path.relative_to(ROOT).parts):
                continue
            if re.search(r"\bS[P]EC\b", path.read_text(errors="replace")):  # [P]: this file does not match itself
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"cite docs/facts.md instead of the outside spec in: {offenders}"
    sections = re.findall(r"^## §(\d)", (ROOT / "docs" / "facts.md").read_text(), flags=re.M)
    cited = {m for p in ROOT.glob("spikeclip_lite/*.py") for m in re.findall(r"facts\.md §(\d)", p.read_text())}
    assert cited <= set(sections), f"citations of missing sections: {cited - set(sections)}"
