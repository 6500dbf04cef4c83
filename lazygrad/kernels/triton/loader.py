"""Triton source -> Python function: Triton's JIT reads a function's source from its file,
so a generated source is written to the cache dir (named by its hash) and imported from there.
Used by the Triton devices (runtime/triton_device.py) and the compile check (compile.py)."""
from __future__ import annotations

import hashlib
import importlib.util
import linecache
import os
import tempfile

# sources and autotune choices live here (LAZYGRAD_CACHE moves it)
CACHE_DIR = os.path.join(os.environ.get("LAZYGRAD_CACHE", os.path.expanduser("~/.cache/lazygrad")), "triton")


def _read(path: str):
  """The file's text, or None when it is missing or unreadable."""
  try:
    with open(path) as f: return f.read()
  except (OSError, UnicodeDecodeError): return None


def load_source(src: str, name: str):
  """Write the source to the cache dir (by hash) and import it: Triton's JIT needs a real file. An entry whose text is not
  the source (truncated by a crash, corrupted) is rewritten; every write goes to a unique temp file then os.replace, so
  readers in other threads and processes see the old file or the whole new one."""
  digest = hashlib.sha256(src.encode()).hexdigest()[:20]
  os.makedirs(CACHE_DIR, exist_ok=True)
  path = os.path.join(CACHE_DIR, f"{name}_{digest}.py")
  if _read(path) != src:
    fd, tmp = tempfile.mkstemp(prefix=f"{name}_{digest}.", suffix=".tmp", dir=CACHE_DIR)
    try:
      with os.fdopen(fd, "w") as f: f.write(src)
      os.replace(tmp, path)
    except BaseException:
      if os.path.exists(tmp): os.unlink(tmp)
      raise
    linecache.checkcache(path)   # Triton's JIT reads the source through linecache: drop a stale copy of the old text
  spec = importlib.util.spec_from_file_location(f"lazygrad_kernel_{digest}", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return getattr(mod, name)
