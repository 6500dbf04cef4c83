"""Compile generated Triton kernels for a GPU target without a GPU (Triton's bundled
ptxas): `python -m lazygrad.kernels.triton_compile jobs.json` where jobs.json is a
list of {"source", "name", "signature", "constexprs"}. Prints one JSON line per job.

Runs in its own process because TRITON_INTERPRET=1 (the interp device) must not be set
when Triton compiles for real."""
from __future__ import annotations
import json
import os
import sys
import time


def compile_source(src: str, name: str, signature: dict, constexprs: dict, arch: int = 90) -> dict:
  import triton
  from triton.compiler import ASTSource
  from triton.backends.compiler import GPUTarget
  from triton.runtime.jit import JITFunction
  from lazygrad.runtime.triton_device import load_source
  fn = JITFunction(load_source(src, name))
  sig = dict(signature, **{k: "constexpr" for k in constexprs})
  t0 = time.perf_counter()
  c = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=constexprs), target=GPUTarget("cuda", arch, 32))
  return {"name": name, "seconds": round(time.perf_counter() - t0, 3), "asm": sorted(c.asm.keys())}


def main(path: str) -> int:
  if os.environ.get("TRITON_INTERPRET") == "1": raise SystemExit("unset TRITON_INTERPRET to compile for a GPU")
  os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
  failed = 0
  for job in json.load(open(path)):
    try: out = compile_source(job["source"], job["name"], job["signature"], job["constexprs"], job.get("arch", 90))
    except Exception as e:   # report and go on: one bad kernel should not hide the others
      out, failed = {"name": job["name"], "error": f"{type(e).__name__}: {e}"[:2000]}, failed + 1
    print(json.dumps(out), flush=True)
  return 1 if failed else 0


if __name__ == "__main__": sys.exit(main(sys.argv[1]))
