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


def test_relative_links_in_the_docs_resolve():
    """Every relative link and image in README.md and docs/*.md names a file the repository ships (text moves
    between these pages; a link left behind would point nowhere)."""
    import re

    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):  # a URL or an anchor on the same page
                continue
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert not broken, broken


#: The library's layers, lowest first: a module imports only from its own layer or lower ones (issue #17).
LAYERS = [
    ("_tensor", "checkpoints", "hub", "gpu_usage", "augment", "reference"),  # helpers
    ("physics", "io", "metrics", "nriqa", "viz"),  # the sensor, files, scores, pictures
    ("baselines",),  # TFP, TFI, TFSTP
    ("tradeoff",),  # texture against PSNR (metrics + baselines)
    ("data", "cifar", "samples"),  # scenes
    ("models",),  # voxels and the LRN
    ("spike_data",),  # spike sets and each run's splits
    ("clip",),  # loading any CLIP
    ("losses", "prompts"),
    ("train", "teaching_clip"),  # the stages; the tool that trains the teaching CLIPs
    ("settings", "evaluate", "widgets"),
    ("pipeline",),
    ("course",),  # the notebooks' modes, and running them (checks settings first)
    ("__main__", "__init__"),  # the command line
]


def package_imports() -> dict[str, set[str]]:
    """module → the package modules it imports (at the top or inside a function)."""
    import ast

    graph = {}
    for path in sorted((ROOT / "spikeclip_lite").glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        graph[path.stem] = names
    return graph


def test_imports_point_one_way():
    layer = {m: i for i, group in enumerate(LAYERS) for m in group}
    graph = package_imports()
    assert set(graph) == set(layer), f"place new modules in LAYERS: {sorted(set(graph) ^ set(layer))}"
    upward = [f"{m} → {d}" for m, deps in graph.items() for d in deps if layer[d] > layer[m]]
    assert not upward, f"imports against the layering: {upward}"

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        return any(
            d == target or (d not in seen and not seen.add(d) and reaches(d, target, seen)) for d in graph[start]
        )

    circles = [f"{m} ↔ {d}" for m, deps in graph.items() for d in deps if reaches(d, m, set())]
    assert not circles, f"import circles: {circles}"


def test_no_test_imports_a_private_name():
    import ast

    offenders = []
    for path in (ROOT / "tests").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("spikeclip_lite"):
                offenders += [f"{path.name}: {a.name}" for a in node.names if a.name.startswith("_")]
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if isinstance(node.value, ast.Name) and node.value.id in LIBRARY_ALIASES.get(path.name, set()):
                    offenders.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert not offenders, offenders


def _library_aliases() -> dict[str, set[str]]:
    """Per test file, the names it binds to spikeclip_lite modules (``from spikeclip_lite import clip as C``)."""
    import ast

    modules = {p.stem for p in (ROOT / "spikeclip_lite").glob("*.py")}
    out = {}
    for path in (ROOT / "tests").glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "spikeclip_lite":
                names |= {a.asname or a.name for a in node.names if a.name in modules}
        out[path.name] = names
    return out


LIBRARY_ALIASES = _library_aliases()


def test_no_class_is_longer_than_a_page_and_a_half():
    """Issue #17: a class a newcomer can read (pipeline.Run was 272 lines doing everything)."""
    import ast

    long = []
    for path in (ROOT / "spikeclip_lite").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 160:
                long.append(f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long
