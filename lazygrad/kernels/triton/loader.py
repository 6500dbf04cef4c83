"""Triton source -> Python function: Triton's JIT reads a function's source from its file,
so a generated source is written to the cache dir (named by its hash) and imported from there.
Used by the Triton devices (runtime/triton_device.py) and the compile check (compile.py)."""
from __future__ import annotations

import hashlib
import importlib.util
import os

# sources and autotune choices live here (LAZYGRAD_CACHE moves it)
CACHE_DIR = os.path.join(os.environ.get("LAZYGRAD_CACHE", os.path.expanduser("~/.cache/lazygrad")), "triton")


def load_source(src: str, name: str):
  """Write the source to the cache dir (by hash) and import it: Triton's JIT needs a real file."""
  digest = hashlib.sha256(src.encode()).hexdigest()[:20]
  os.makedirs(CACHE_DIR, exist_ok=True)
  path = os.path.join(CACHE_DIR, f"{name}_{digest}.py")
  if not os.path.exists(path):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f: f.write(src)
    os.replace(tmp, path)
  spec = importlib.util.spec_from_file_location(f"lazygrad_kernel_{digest}", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return getattr(mod, name)
