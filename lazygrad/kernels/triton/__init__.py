"""The Triton backend: Kernel -> TritonProgram (source, entry point, signature, launch configs).

render.py   the generic renderer (elementwise and row kernels), launch configs, the program types
matmul.py   the tl.dot template for kernels carrying a Contraction
attention.py the flash-attention template for ATTENTION kernels (forward, dQ, dK/dV)
scatter.py  the SCATTER_ADD template (atomic adds into a zeroed output)
loader.py   a source -> the Python function Triton's JIT wraps (written to the cache dir)
compile.py  `python -m lazygrad.kernels.triton.compile jobs.json`: compile for sm_90 without a GPU

Nothing here imports triton: sources are strings until a device (runtime/triton_device.py) loads them."""
from __future__ import annotations

from lazygrad.kernels.ir import Kernel
from lazygrad.kernels.triton import render
from lazygrad.kernels.triton.attention import attention_ok, attention_program
from lazygrad.kernels.triton.matmul import matmul_program, render_matmul, template_ok
from lazygrad.kernels.triton.render import LaunchConfig, TritonProgram, TritonRenderer, signature
from lazygrad.kernels.triton.scatter import render_scatter, scatter_program
from lazygrad.ops import Ops


def render_triton(k: Kernel, interp: bool = False) -> str:
  """The Triton source of a kernel: the flash-attention template (attention.py) for an ATTENTION kernel, the tl.dot
  template (matmul.py) when template_ok(k), else the generic TritonRenderer.
  interp: the source for Triton's interpreter (no libdevice: the accurate primitives use float64 formulas)."""
  if attention_ok(k): return attention_program(k, interp).source
  if k.body.op is Ops.SCATTER_ADD: return render_scatter(k, interp)
  if template_ok(k): return render_matmul(k, interp)   # tiled tl.dot with prologue/epilogue (matmul.py)
  return TritonRenderer(k, interp).render()


def triton_program(k: Kernel, interp: bool = False) -> TritonProgram:
  """Render a kernel and choose how to launch it (interp: few, large programs). The configs are
  read through the render module (render.reduce_configs, ...), where tests replace them."""
  if attention_ok(k): return attention_program(k, interp)
  if k.body.op is Ops.SCATTER_ADD: return scatter_program(k, interp)
  if template_ok(k): return matmul_program(k, interp)
  configs = render.reduce_configs(k, interp) if k.reduce_axes else render.elementwise_configs(k, interp)
  return TritonProgram(k.name, render_triton(k, interp), signature(k), configs)


__all__ = ["LaunchConfig", "TritonProgram", "render_triton", "signature", "triton_program"]
