"""Compile generated Triton kernels for a GPU target without a GPU (Triton's bundled
ptxas): `python -m lazygrad.kernels.triton.compile jobs.json` where jobs.json is a
list of {"source", "name", "signature", "constexprs"} with optional "num_warps",
"num_stages" (the launch config's), "arch" (default 90), "aligned" (default true) and
"ptx_out" (a path the PTX is written to). Prints one JSON line per job: the asm kinds
built, and "ptx_has": which of PTX_MARKERS occur in the PTX.

The compile is specialised the way a launch with torch tensors specialises it: every
pointer argument gets `tt.divisibility=16` (Triton's launcher checks data_ptr() % 16
and torch allocations are 16-byte aligned at least), so vectorised loads, cp.async and
wgmma show up in the PTX as they would on the GPU. "aligned": false compiles without.

Runs in its own process because TRITON_INTERPRET=1 (the interp device) must not be set
when Triton compiles for real."""
from __future__ import annotations

import json
import os
import sys
import time

from lazygrad.kernels.triton.loader import load_source

# instructions worth knowing about in a kernel's PTX (a substring test on the text)
PTX_MARKERS = ["wgmma", "mma.sync", "ld.global.v4", "ld.global.v2", "cp.async"]


def pointer_attrs(fn, signature: dict, target) -> dict:
  """ASTSource attrs for 16-byte-aligned pointer arguments: {(arg index,): [[name, value]]}.
  Triton 3.6 and 3.9 both key by the argument's path in the full parameter list and take
  the attribute list from the backend's parse_attr("D") (what a launch computes for a
  tensor whose data_ptr() % 16 == 0); older spellings fall back to tt.divisibility."""
  try:
    from triton.compiler.compiler import make_backend
    spec = make_backend(target).parse_attr("D")
  except Exception:  # noqa: BLE001  (a Triton without parse_attr: the attribute it would produce)
    spec = [["tt.divisibility", 16]]
  return {(fn.arg_names.index(k),): spec for k, t in signature.items() if str(t).startswith("*")}


def ptx_has(ptx: str) -> list[str]:
  """Which of PTX_MARKERS occur in the PTX text (a substring test)."""
  return [m for m in PTX_MARKERS if m in ptx]


def compile_source(src: str, name: str, signature: dict, constexprs: dict, arch: int = 90, num_warps: int = 4,
                   num_stages: int = 3, aligned: bool = True, ptx_out: str | None = None) -> dict:
  """Compile one kernel source for sm_{arch} with Triton (no GPU needed), pointers 16-byte aligned unless `aligned`
  is false; returns a JSON-able report: name, seconds, asm kinds, triton version, ptx_has (and ptx_out if written)."""
  import triton
  from triton.backends.compiler import GPUTarget
  from triton.compiler import ASTSource
  from triton.runtime.jit import JITFunction

  fn = JITFunction(load_source(src, name))
  sig = dict(signature, **{k: "constexpr" for k in constexprs})
  target = GPUTarget("cuda", arch, 32)
  attrs = pointer_attrs(fn, signature, target) if aligned else {}
  t0 = time.perf_counter()
  c = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=constexprs, attrs=attrs), target=target,
                     options={"num_warps": num_warps, "num_stages": num_stages})
  out = {"name": name, "seconds": round(time.perf_counter() - t0, 3), "asm": sorted(c.asm.keys()),
         "triton": triton.__version__, "aligned": aligned}
  ptx = c.asm.get("ptx", "")
  if isinstance(ptx, bytes): ptx = ptx.decode()
  out["ptx_has"] = ptx_has(ptx)
  if ptx_out:
    os.makedirs(os.path.dirname(os.path.abspath(ptx_out)), exist_ok=True)
    with open(ptx_out, "w") as f: f.write(ptx)
    out["ptx_out"] = ptx_out
  return out


def main(path: str) -> int:
  """Compile every job of the JSON file at path, printing one JSON line per job (an "error" line when one fails);
  returns 1 if any failed, else 0."""
  if os.environ.get("TRITON_INTERPRET") == "1": raise SystemExit("unset TRITON_INTERPRET to compile for a GPU")
  os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
  failed = 0
  with open(path) as f: jobs = json.load(f)
  for job in jobs:
    try:
      out = compile_source(job["source"], job["name"], job["signature"], job["constexprs"], job.get("arch", 90),
                           job.get("num_warps", 4), job.get("num_stages", 3), job.get("aligned", True), job.get("ptx_out"))
    except Exception as e:  # noqa: BLE001  report and go on: one bad kernel should not hide the others
      out, failed = {"name": job["name"], "error": f"{type(e).__name__}: {e}"[:2000]}, failed + 1
    print(json.dumps(out), flush=True)
  return 1 if failed else 0


if __name__ == "__main__": sys.exit(main(sys.argv[1]))
