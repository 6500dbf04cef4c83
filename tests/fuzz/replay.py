"""Replay recorded fuzz programs (the pickles next to mismatches.log) for triage:

  cd tests && LAZYGRAD_DEVICE=cpu python -m fuzz.replay /tmp/lazygrad_fuzz/cpu-*.pkl

prints each program and what differs from torch now (nothing once it is fixed)."""
import os
import pickle
import sys
from fuzz.check import check


def main(paths: list[str]) -> int:
  device = os.environ.get("LAZYGRAD_DEVICE", "cpu")
  bad = 0
  for path in paths:
    with open(path, "rb") as f: p = pickle.load(f)
    err = check(p, device)
    bad += err is not None
    print(f"### {path}\n{p!r}\n{err or 'agrees with torch'}\n")
  return 1 if bad else 0


if __name__ == "__main__": sys.exit(main(sys.argv[1:]))
