"""The line budget: no Python file of the project over 800 lines (docs/contributing.md).

  python tools/check_budget.py          # exit 1 and list the files over budget"""
from __future__ import annotations
import pathlib
import sys

BUDGET = 800
ROOT = pathlib.Path(__file__).resolve().parent.parent
DIRS = ("lazygrad", "tests", "examples", "bench", "tools")


def over_budget() -> list[tuple[str, int]]:
  out = []
  for d in DIRS:
    for p in sorted((ROOT / d).rglob("*.py")):
      n = len(p.read_text().splitlines())
      if n > BUDGET: out.append((str(p.relative_to(ROOT)), n))
  return out


if __name__ == "__main__":
  bad = over_budget()
  for path, n in bad: print(f"{path}: {n} lines (budget {BUDGET})")
  print(f"line budget: {'FAILED' if bad else 'ok'} (no file over {BUDGET} lines)")
  sys.exit(1 if bad else 0)
