"""Print per-notebook execution times recorded by tests/test_notebooks.py (end of `make test`)."""

import json
from pathlib import Path

path = Path(__file__).resolve().parent.parent / "outputs" / "test-notebooks" / "timings.json"
if path.exists():
    times = json.loads(path.read_text())
    print("\nNotebook times (papermill, fast mode):")
    for name, s in sorted(times.items()):
        print(f"  {name:<40} {s:7.1f} s")
    print(f"  {'total':<40} {sum(times.values()):7.1f} s")
else:
    print("no notebook timings recorded")
