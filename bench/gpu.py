#!/usr/bin/env python3
"""GPU benchmark: lazygrad's generated kernels vs torch eager vs torch.compile.

  python bench/gpu.py                                  # on a GPU (H100/H200: device cuda, full sizes, < 5 min)
  python bench/gpu.py --device cpu --quick             # the CPU run of the same script (< 1 min on 2 cores)
  python bench/gpu.py --device interp --quick          # Triton's interpreter, tiny sizes (sets TRITON_INTERPRET=1)

Cases: matmul in fp32 / tf32 / fp16 / bf16 (1024-8192 on a GPU), mm + bias + relu,
Linear forward + backward, softmax and layer_norm (4096 x 1024 / 4096 / 16384, fp32 and
fp16), conv2d forward and forward + backward (the implicit-GEMM template; ResNet-50 layer shapes, fp32/tf32/bf16
on a GPU, vs cuDNN), causal scaled_dot_product_attention forward and forward + backward (the flash-attention
template; T 512-8192, head dim 64/128, fp16/bf16 on a GPU, vs torch's SDPA kernels), a fused
elementwise chain and a plain device copy (the bandwidth roofline the chain is measured against). Inputs are realized first. A time is the median over
repeats after warm-up (compiles, autotuning, caches), with torch.cuda.synchronize on
cuda; a lazygrad time is building the lazy graph + realize (scheduling, launches). The
ratio is lazygrad / other: below 1 means lazygrad is faster. torch.compile is skipped
where it cannot compile (said so in the table), and with --quick or on interp unless --compile on.

For every lazygrad kernel of every case the script also prints what the Kernel IR says it
moves and computes: bytes = the kernel's output written once + each input buffer read
once (a broadcast input counts its buffer, not the broadcast), FLOPs = Kernel.flops;
against the op's minimum (its inputs read once + its output written once; 2*M*N*K for a
matmul). With --peak-gbs / --peak-tflops (known for H100 / H200) it adds the roofline
time of that minimum and the fraction of it each measured time reaches.

The table goes to stdout and into bench/RESULTS.md as a section "GPU benchmark
(bench/gpu.py): <device>, <date>" (replacing that device's previous section; --no-write
leaves the file alone).
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RESULTS = os.path.join(ROOT, "bench", "RESULTS.md")
SECTION = "## GPU benchmark (`bench/gpu.py`)"

# dense peaks: (HBM GB/s, {precision: TFLOP/s}); fp32 = CUDA cores, tf32/fp16/bf16 = tensor cores without sparsity
PEAKS = {
  "H200": (4800, {"fp32": 67, "tf32": 495, "fp16": 989, "bf16": 989}),
  "H100 PCIe": (2000, {"fp32": 51, "tf32": 378, "fp16": 756, "bf16": 756}),
  "H100": (3350, {"fp32": 67, "tf32": 495, "fp16": 989, "bf16": 989}),
  "A100": (2039, {"fp32": 19.5, "tf32": 156, "fp16": 312, "bf16": 312}),
}


def parse_args():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--device", default=None, help="cuda, cpu or interp (default: LAZYGRAD_DEVICE, else cuda when a GPU is present, else cpu)")
  p.add_argument("--quick", action="store_true", help="small sizes, few repeats (cpu/interp smoke run)")
  p.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                 help="torch.compile column: auto = off with --quick or on interp (inductor's C++ builds take seconds per case on a CPU)")
  p.add_argument("--compile-budget", type=float, default=None,
                 help="seconds of torch.compile warm-up (compiling) after which later cases skip it (default 150 on cuda, unlimited elsewhere)")
  p.add_argument("--cases", default="", help="comma-separated case name prefixes to run (default: all)")
  p.add_argument("--min-time", type=float, default=None, help="seconds of timed repeats per measurement")
  p.add_argument("--peak-gbs", type=float, default=None, help="memory bandwidth for roofline estimates (GB/s)")
  p.add_argument("--peak-tflops", type=float, default=None, help="matmul peak for roofline estimates (TFLOP/s, all precisions)")
  p.add_argument("--threads", type=int, default=None,
                 help="CPU threads for numpy's BLAS and torch (default 1 on cpu/interp: steadier on a shared machine, and the same for both)")
  p.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
  return p.parse_args()


ARGS = parse_args()
# the default without importing torch (it loads numpy, whose BLAS reads its thread count at load)
DEVICE = ARGS.device or os.environ.get("LAZYGRAD_DEVICE") or ("cuda" if os.path.exists("/dev/nvidiactl") else "cpu")
if DEVICE == "interp": os.environ.setdefault("TRITON_INTERPRET", "1")   # before anything imports triton
THREADS = ARGS.threads if ARGS.threads is not None else (None if DEVICE == "cuda" else 1)
if THREADS is not None:   # before numpy loads its BLAS
  for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"): os.environ[_var] = str(THREADS)
os.environ["LAZYGRAD_DEVICE"] = DEVICE

sys.path.insert(0, ROOT)
import numpy as np
import torch
import torch.nn.functional as F

import lazygrad
from lazygrad import Tensor

TORCH_DEV = "cuda" if DEVICE == "cuda" else "cpu"
if THREADS is not None: torch.set_num_threads(THREADS)
TDT = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2}


# ---------------------------------------------------------------- sizes per run kind
def sizes():
  if DEVICE == "cuda" and not ARGS.quick:
    return {"mm": [1024, 4096, 8192], "mm_dtypes": ["fp32", "tf32", "fp16", "bf16"], "mm_epi": 4096, "linear": (8192, 4096, 4096),
            "rows": 4096, "cols": [1024, 4096, 16384], "ew": (8192, 8192),
            "attn": [(16, 16, 512, 64), (4, 16, 2048, 64), (1, 16, 8192, 64), (4, 8, 2048, 128), (1, 8, 8192, 128)],
            "attn_dtypes": ["fp16", "bf16"],
            # ResNet-50 layers, batch 32: (N, C, HxW, K, kernel, stride)
            "conv": [(32, 64, 56, 64, 3, 1), (32, 128, 28, 128, 3, 1), (32, 256, 14, 256, 3, 1), (32, 512, 7, 512, 3, 1),
                     (32, 256, 56, 64, 1, 1), (32, 256, 56, 512, 1, 2)], "conv_dtypes": ["fp32", "tf32", "bf16"]}
  if DEVICE == "interp":
    return {"mm": [64], "mm_dtypes": ["fp32", "fp16"], "mm_epi": 64, "linear": (64, 64, 64),
            "rows": 32, "cols": [64, 256], "ew": (64, 256), "attn": [(1, 2, 64, 16)], "attn_dtypes": ["fp32"],
            "conv": [(2, 8, 8, 8, 3, 1)], "conv_dtypes": ["fp32"]}
  if ARGS.quick:
    return {"mm": [256, 512], "mm_dtypes": ["fp32", "fp16", "bf16"] + (["tf32"] if DEVICE == "cuda" else []), "mm_epi": 256,
            "linear": (256, 256, 256), "rows": 256, "cols": [256, 1024], "ew": (1024, 1024), "attn": [(1, 2, 128, 64)],
            "attn_dtypes": ["fp16", "bf16"] if DEVICE == "cuda" else ["fp32"], "conv": [(4, 16, 16, 16, 3, 1)], "conv_dtypes": ["fp32"]}
  return {"mm": [256, 1024], "mm_dtypes": ["fp32", "fp16", "bf16"], "mm_epi": 1024, "linear": (1024, 1024, 1024),
          "rows": 1024, "cols": [1024, 4096], "ew": (2048, 2048), "attn": [(2, 2, 256, 64), (1, 4, 1024, 64)], "attn_dtypes": ["fp32"],
          "conv": [(8, 64, 28, 64, 3, 1), (8, 128, 14, 128, 3, 1)], "conv_dtypes": ["fp32"]}


def min_time() -> float:
  if ARGS.min_time is not None: return ARGS.min_time
  return 0.25 if DEVICE == "cuda" else 0.3 if ARGS.quick else 0.5


def pin_malloc_thresholds() -> str:
  """As bench/fusion.py: fixed glibc mmap/trim thresholds, so large numpy/torch temporaries
  come from the heap instead of fresh (page-faulting) mmaps depending on earlier frees."""
  try:
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    ok = libc.mallopt(-3, 1 << 30) == 1 and libc.mallopt(-1, 1 << 30) == 1   # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    return "malloc thresholds pinned" if ok else "adaptive malloc"
  except OSError:
    return "not glibc"


# ---------------------------------------------------------------- timing
def sync():
  if DEVICE == "cuda": torch.cuda.synchronize()


def median_time(fn, warmup: int = 2, max_reps: int = 200) -> float:
  """Median seconds of fn() after `warmup` calls; repeats until min_time() is spent (at least 3)."""
  for _ in range(warmup): fn()
  sync()
  times, spent = [], 0.0
  while len(times) < 3 or (spent < min_time() and len(times) < max_reps):
    t0 = time.perf_counter(); fn(); sync()
    dt = time.perf_counter() - t0
    times.append(dt); spent += dt
  return statistics.median(times)


# ---------------------------------------------------------------- kernel accounting from the IR
def kernel_stats(items) -> list[dict]:
  """Bytes and FLOPs each kernel moves/computes, from the schedule items: its output written
  once, each input buffer read once (a realized input: at most its buffer's size)."""
  out = []
  for it in items:
    k = it.kernel
    wb = math.prod(it.out.shape) * k.buf_dtypes[0].itemsize
    rb = 0
    for node, dt in zip(it.inputs, k.buf_dtypes[1:]):
      n = math.prod(node.shape)
      if node.realized: n = min(n, node.buffer.size)
      rb += n * dt.itemsize
    out.append({"name": k.name, "shape": tuple(k.shape), "bytes": wb + rb, "flops": ir_flops(k), "kernel_flops": k.flops,
                "tl.dot": "tl.dot" in it.source})
  return out


def ir_flops(k) -> int:
  """Kernel.flops counts every op of the body over the whole iteration space; here the ops
  under a REDUCE count over `shape` and the rest (the epilogue) over `out_shape`."""
  from lazygrad.ops import Ops, TEMPLATES
  if k.body.op in TEMPLATES: return k.flops   # a template's GEMMs (ops/attention.py: attention_flops)
  nodes = k.body.walk()
  inner = {id(x) for e in nodes if e.op is Ops.REDUCE for x in e.walk()}
  n_in, n_out = math.prod(k.shape), math.prod(k.out_shape)
  return sum(n_in if id(e) in inner else n_out for e in nodes if e.op not in (Ops.LOAD, Ops.CONST, Ops.VALID))


def kernel_replay(items):
  """A function launching just the case's kernels on fresh output buffers (what realize does
  minus graph building and scheduling), or None where an item writes in place."""
  from lazygrad.runtime import Buffer, get_device
  dev, bufs, launches = get_device(DEVICE), {}, []
  for it in items:
    if it.in_place: return None
    node = it.out
    buf = Buffer(DEVICE, math.prod(node.shape), node.dtype)
    ins = [n.buffer if n.realized else bufs[id(n)] for n in it.inputs]
    launches.append((dev.compile(it.kernel), [buf.data] + [b.data for b in ins], it.var_values))
    bufs[id(node)] = buf
  def run():
    for fn, args, var_values in launches: fn(args, var_values)
  return run


# ---------------------------------------------------------------- cases
class Case:
  """One benchmark row: lazygrad and torch versions of the same computation on the same data."""
  def __init__(self, name, shape, dtype, lg_fn, torch_fn, min_bytes, min_flops, kind, compile_fn=None, tf32=False):
    self.name, self.shape, self.dtype, self.lg_fn, self.torch_fn = name, shape, dtype, lg_fn, torch_fn
    self.min_bytes, self.min_flops, self.kind, self.compile_fn, self.tf32 = min_bytes, min_flops, kind, compile_fn, tf32


def tensors(*shapes, dtype="fp32", scale=1.0):
  g = torch.Generator(device=TORCH_DEV).manual_seed(0)
  ts = [(torch.randn(*s, generator=g, device=TORCH_DEV, dtype=torch.float32) * scale).to(TDT[dtype]) for s in shapes]
  return ts, [Tensor.from_torch(t, device=DEVICE).realize() for t in ts]


def case_matmul(n, dt, compile_it=True):
  (a, b), (la, lb) = tensors((n, n), (n, n), dtype=dt, scale=n ** -0.25)
  return Case("matmul", f"{n}x{n}x{n}", dt, lambda: [la @ lb], lambda: a @ b, 3 * n * n * BYTES[dt], 2 * n ** 3, "flops",
              compile_fn=(lambda f: (lambda: f(a, b))) if compile_it else None, tf32=dt == "tf32")


def case_mm_bias_relu(n, dt):
  (x, w, bias), (lx, lw, lbias) = tensors((n, n), (n, n), (n,), dtype=dt, scale=n ** -0.25)
  return Case("mm+bias+relu", f"{n}x{n}x{n}", dt, lambda: [(lx @ lw + lbias).relu()], lambda: torch.relu(x @ w + bias),
              (3 * n * n + n) * BYTES[dt], 2 * n ** 3 + 2 * n * n, "flops", compile_fn=lambda f: (lambda: f(x, w, bias)))


def _mm_bias_relu(x, w, b): return torch.relu(x @ w + b)


def case_linear(m, k, n, dt):
  (x, w, b, g), (lx, lw, lb, lg) = tensors((m, k), (n, k), (n,), (m, n), dtype=dt, scale=k ** -0.25)
  for t in (x, w, b): t.requires_grad_(True)
  for t in (lx, lw, lb): t.requires_grad = True

  def lg_step():
    lx.grad = lw.grad = lb.grad = None
    y = lx.linear(lw, lb)
    y.backward(lg)
    return [y, lx.grad, lw.grad, lb.grad]   # y too: a training step uses the forward output (torch computes it anyway)

  def torch_step(f=F.linear):
    x.grad = w.grad = b.grad = None
    f(x, w, b).backward(g)
    return x.grad
  min_bytes = (2 * (m * k + n * k + n) + 2 * m * n) * BYTES[dt]   # x, w, b, dy read; y, dx, dw, db written
  return Case("linear fwd+bwd", f"{m}x{k}->{n}", dt, lg_step, torch_step, min_bytes, 6 * m * n * k, "flops",
              compile_fn=lambda f: (lambda: torch_step(f)))


def case_softmax(r, c, dt):
  (x,), (lx,) = tensors((r, c), dtype=dt)
  return Case("softmax", f"{r}x{c}", dt, lambda: [lx.softmax(-1)], lambda: torch.softmax(x, -1), 2 * r * c * BYTES[dt], 5 * r * c, "bytes",
              compile_fn=lambda f: (lambda: f(x)))


def case_layer_norm(r, c, dt):
  (x, w, b), (lx, lw, lb) = tensors((r, c), (c,), (c,), dtype=dt)
  return Case("layer_norm", f"{r}x{c}", dt, lambda: [lx.layer_norm(c, lw, lb)], lambda: F.layer_norm(x, (c,), w, b),
              (2 * r * c + 2 * c) * BYTES[dt], 8 * r * c, "bytes", compile_fn=lambda f: (lambda: f(x, (c,), w, b)))


def _sdpa_causal(q, k, v): return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def case_attention(b, h, t, d, dt):
  """Causal attention forward: the flash-attention template (one kernel) vs torch's SDPA (flash / memory-efficient kernels)."""
  (q, k, v), (lq, lk, lv) = tensors(*[(b, h, t, d)] * 3, dtype=dt)
  flops = 4 * b * h * t * t * d // 2   # q k^T and P v, half of the blocks (causal)
  return Case("sdpa causal", f"{b}x{h}x{t}x{d}", dt, lambda: [lq.scaled_dot_product_attention(lk, lv, is_causal=True)],
              lambda: _sdpa_causal(q, k, v), 4 * b * h * t * d * BYTES[dt], flops, "flops", compile_fn=lambda f: (lambda: f(q, k, v)))


def case_attention_train(b, h, t, d, dt):
  """Causal attention forward + backward (dQ, dK, dV): the template's three kernels plus rowsum(dO * O)."""
  (q, k, v, g), (lq, lk, lv, lg) = tensors(*[(b, h, t, d)] * 4, dtype=dt)
  for x in (q, k, v): x.requires_grad_(True)
  for x in (lq, lk, lv): x.requires_grad = True

  def lg_step():
    lq.grad = lk.grad = lv.grad = None
    o = lq.scaled_dot_product_attention(lk, lv, is_causal=True)
    o.backward(lg)
    return [o, lq.grad, lk.grad, lv.grad]

  def torch_step(f=_sdpa_causal):
    q.grad = k.grad = v.grad = None
    f(q, k, v).backward(g)
    return q.grad
  flops = 4 * b * h * t * t * d // 2 * 7 // 2   # forward + backward (2.5 forwards: five GEMMs), causal
  return Case("sdpa causal fwd+bwd", f"{b}x{h}x{t}x{d}", dt, lg_step, torch_step, 12 * b * h * t * d * BYTES[dt], flops, "flops",
              compile_fn=lambda f: (lambda: torch_step(f)))


def _conv3x3(x, w): return F.conv2d(x, w, padding=w.shape[-1] // 2)


def _conv_s2(x, w): return F.conv2d(x, w, stride=2, padding=w.shape[-1] // 2)


def case_conv(n, c, hw, k, ks, stride, dt, train=False):
  """conv2d (padding ks // 2): the implicit-GEMM template (one contraction kernel; backward: a weight-gradient
  contraction and the input gradient as a transposed conv) vs cuDNN. ResNet-50 layer shapes on a GPU."""
  (x, w, g), (lx, lw, lg) = tensors((n, c, hw, hw), (k, c, ks, ks), (n, k, (hw - 1) // stride + 1, (hw - 1) // stride + 1),
                                    dtype=dt, scale=(c * ks * ks) ** -0.25)
  out_hw = (hw - 1) // stride + 1
  flops = 2 * n * k * out_hw * out_hw * c * ks * ks
  io = (n * c * hw * hw + k * c * ks * ks + n * k * out_hw * out_hw) * BYTES[dt]
  if stride not in (1, 2): raise ValueError("case_conv: stride 1 or 2")
  fn, name = (_conv3x3, "conv2d") if stride == 1 else (_conv_s2, "conv2d s2")
  shape = f"{n}x{c}x{hw}x{hw} k{k} {ks}x{ks}"
  if not train:
    return Case(name, shape, dt, lambda: [lx.conv2d(lw, stride=stride, padding=ks // 2)], lambda: fn(x, w), io, flops, "flops",
                compile_fn=lambda f: (lambda: f(x, w)), tf32=dt == "tf32")
  for t in (x, w): t.requires_grad_(True)
  for t in (lx, lw): t.requires_grad = True

  def lg_step():
    lx.grad = lw.grad = None
    y = lx.conv2d(lw, stride=stride, padding=ks // 2)
    y.backward(lg)
    return [y, lx.grad, lw.grad]

  def torch_step(f=fn):
    x.grad = w.grad = None
    f(x, w).backward(g)
    return x.grad
  return Case(name + " fwd+bwd", shape, dt, lg_step, torch_step, 2 * io, 3 * flops, "flops",
              compile_fn=lambda f: (lambda: torch_step(f)), tf32=dt == "tf32")


def _chain(a, b, c): return ((a + b) * c).relu() * 0.5 - a


def case_chain(r, c, dt):
  (a, b, cc), (la, lb, lc) = tensors((r, c), (r, c), (r, c), dtype=dt)
  return Case("ew chain ((a+b)*c).relu()*0.5-a", f"{r}x{c}", dt, lambda: [_chain(la, lb, lc)], lambda: _chain(a, b, cc),
              4 * r * c * BYTES[dt], 5 * r * c, "bytes", compile_fn=lambda f: (lambda: f(a, b, cc)))


def case_copy(r, c, dt):
  (a,), (la,) = tensors((r, c), dtype=dt)
  # lazygrad has no clone(): a transposed view made contiguous and read back is a copy with a transpose;
  # `-a` is the same traffic as a copy (read once, write once) without the transpose
  return Case("copy (lazygrad: -a; torch: clone)", f"{r}x{c}", dt, lambda: [-la], lambda: a.clone(), 2 * r * c * BYTES[dt], 0, "bytes",
              compile_fn=lambda f: (lambda: f(a)))


def build_cases() -> list:
  s = sizes()
  cases = []
  for dt in s["mm_dtypes"]:
    # torch.compile of a plain matmul calls the same cuBLAS/BLAS kernel as eager: compiled at the largest size only
    for n in s["mm"]: cases.append(lambda n=n, dt=dt: case_matmul(n, dt, compile_it=n == max(s["mm"])))
  epi_dt = ["fp32", "fp16"]
  for dt in epi_dt: cases.append(lambda dt=dt: case_mm_bias_relu(s["mm_epi"], dt))
  for dt in epi_dt: cases.append(lambda dt=dt: case_linear(*s["linear"], dt))
  for fn in (case_softmax, case_layer_norm):
    for dt in ("fp32", "fp16"):
      for c in s["cols"]: cases.append(lambda fn=fn, c=c, dt=dt: fn(s["rows"], c, dt))
  for dt in s["conv_dtypes"]:
    for shape in s["conv"]:
      for train in (False, True): cases.append(lambda shape=shape, dt=dt, train=train: case_conv(*shape, dt, train=train))
  for fn in (case_attention, case_attention_train):
    for dt in s["attn_dtypes"]:
      for shape in s["attn"]: cases.append(lambda fn=fn, shape=shape, dt=dt: fn(*shape, dt))
  cases.append(lambda: case_copy(*s["ew"], "fp32"))
  cases.append(lambda: case_chain(*s["ew"], "fp32"))
  return cases


TORCH_OF = {"sdpa causal": _sdpa_causal, "conv2d s2": _conv_s2, "conv2d": _conv3x3,
            "matmul": lambda a, b: a @ b, "mm+bias+relu": _mm_bias_relu, "linear fwd+bwd": F.linear, "softmax": lambda x: torch.softmax(x, -1),
            "layer_norm": F.layer_norm, "copy": lambda a: a.clone(), "ew chain": _chain}


def torch_fn_for(name):
  return next(f for k, f in TORCH_OF.items() if name.startswith(k))


# ---------------------------------------------------------------- running
class TF32:
  """tf32 on for lazygrad (lazygrad.backends.cuda.matmul.allow_tf32, where it exists) and torch."""
  def __init__(self, on): self.on = on

  def __enter__(self):
    m = getattr(getattr(getattr(lazygrad, "backends", None), "cuda", None), "matmul", None)
    self.lg = m if m is not None and hasattr(m, "allow_tf32") else None
    self.saved = (self.lg.allow_tf32 if self.lg else None, torch.backends.cuda.matmul.allow_tf32)
    if self.on:
      if self.lg: self.lg.allow_tf32 = True
      torch.backends.cuda.matmul.allow_tf32 = True
    return self

  def __exit__(self, *exc):
    if self.lg: self.lg.allow_tf32 = self.saved[0]
    torch.backends.cuda.matmul.allow_tf32 = self.saved[1]


COMPILE_SPENT = [0.0]


def compile_budget() -> float:
  if ARGS.compile_budget is not None: return ARGS.compile_budget
  return 150.0 if DEVICE == "cuda" else float("inf")


def raise_recompile_limit():
  """Each case is a new shape/dtype for the same torch function: one compile each (dynamic=False), more than dynamo's default 8."""
  try:
    import torch._dynamo.config as dc
    dc.cache_size_limit = 64
  except (ImportError, AttributeError): pass


def use_compile() -> bool:
  return ARGS.compile == "on" or (ARGS.compile == "auto" and (DEVICE == "cuda" or (DEVICE == "cpu" and not ARGS.quick)))


def run_case(case: Case) -> dict:
  row = {"case": case.name, "shape": case.shape, "dtype": case.dtype, "note": ""}
  with TF32(case.tf32) as tf:
    if case.tf32 and tf.lg is None: row["note"] = "lazygrad has no allow_tf32 switch: fp32 products"
    outs = case.lg_fn()
    items = lazygrad.schedule(*outs)
    row["kernels"] = kernel_stats(items)
    def lg_run():
      ts = case.lg_fn()
      ts[0].realize(*ts[1:])
    row["lazygrad"] = median_time(lg_run)
    replay = kernel_replay(items)
    row["kernels_only"] = median_time(replay) if replay is not None else None
    row["torch"] = median_time(case.torch_fn)
    row["compile"] = None
    if not use_compile(): row["compile_error"] = "off"
    elif case.compile_fn is None: row["compile_error"] = "same BLAS call as eager"
    elif COMPILE_SPENT[0] > compile_budget(): row["compile_error"] = "compile budget spent"
    else:
      t0 = time.perf_counter()
      try:
        fn = case.compile_fn(torch.compile(torch_fn_for(case.name), dynamic=False))
        fn(); fn(); sync()   # compiles (and recompiles once for the second call's grad state, if any)
        COMPILE_SPENT[0] += time.perf_counter() - t0
        row["compile"] = median_time(fn, warmup=1)
      except Exception as e:  # noqa: BLE001  a backend or compiler that fails: say so, go on
        COMPILE_SPENT[0] += time.perf_counter() - t0
        msg = str(e).strip().splitlines()[0][:60] if str(e).strip() else ""
        row["compile_error"] = f"failed ({type(e).__name__}{': ' + msg if msg else ''})".replace("|", "/")
  row["min_bytes"], row["min_flops"], row["kind"] = case.min_bytes, case.min_flops, case.kind
  return row


def peaks():
  name = torch.cuda.get_device_name() if DEVICE == "cuda" else ""
  bw, fl = None, {}
  for k, (b, f) in PEAKS.items():
    if k in name: bw, fl = b, f; break
  if ARGS.peak_gbs: bw = ARGS.peak_gbs
  if ARGS.peak_tflops: fl = {k: ARGS.peak_tflops for k in ("fp32", "tf32", "fp16", "bf16")}
  return bw, fl


def roofline_s(row, bw, fl):
  """Seconds the op's minimum traffic / FLOPs take at the device's peaks (None when unknown)."""
  if bw is None: return None
  t = row["min_bytes"] / (bw * 1e9)
  if row["kind"] == "flops" and row["dtype"] in fl: t = max(t, row["min_flops"] / (fl[row["dtype"]] * 1e12))
  return t


def rate(row, t) -> str:
  if t is None: return "-"
  if row["kind"] == "bytes": return f"{row['min_bytes'] / t / 1e9:.3g} GB/s"
  f = row["min_flops"] / t
  return f"{f / 1e12:.3g} TFLOP/s" if f >= 1e12 else f"{f / 1e9:.3g} GFLOP/s"


def fmt_ms(t) -> str: return "-" if t is None else f"{t * 1e3:.3f}" if t < 0.01 else f"{t * 1e3:.2f}"


def table(rows, bw, fl) -> list[str]:
  head = ["case", "shape", "dtype", "kernels", "lazygrad ms", "kernels only ms", "torch ms", "torch.compile ms",
          "lazygrad rate", "torch rate", "compile rate",
          "/ torch", "/ compile", "IR bytes / min", "IR FLOPs / min"]
  if bw is not None: head += ["roofline ms", "lazygrad % of roofline", "kernels only % of roofline", "torch % of roofline"]
  lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < 3 else "---:" for i in range(len(head))) + "|"]
  for r in rows:
    kb, kf = sum(k["bytes"] for k in r["kernels"]), sum(k["flops"] for k in r["kernels"])
    comp = r["compile"]
    cells = [f"`{r['case']}`", r["shape"], r["dtype"] + (" *" if r["note"] else ""), str(len(r["kernels"])), fmt_ms(r["lazygrad"]),
             fmt_ms(r["kernels_only"]),
             fmt_ms(r["torch"]), fmt_ms(comp) if comp is not None else r.get("compile_error", "-"),
             rate(r, r["lazygrad"]), rate(r, r["torch"]), rate(r, comp),
             f"{r['lazygrad'] / r['torch']:.2f}", f"{r['lazygrad'] / comp:.2f}" if comp else "-",
             f"{kb / r['min_bytes']:.2f}", f"{kf / r['min_flops']:.2f}" if r["min_flops"] else "-"]
    if bw is not None:
      rt = roofline_s(r, bw, fl)
      ko = r["kernels_only"]
      cells += [fmt_ms(rt), f"{100 * rt / r['lazygrad']:.0f}%", f"{100 * rt / ko:.0f}%" if ko else "-", f"{100 * rt / r['torch']:.0f}%"]
    lines.append("| " + " | ".join(cells) + " |")
  return lines


def kernel_lines(rows) -> list[str]:
  out = ["| case | shape | dtype | kernel | iteration space | IR bytes | IR FLOPs | Kernel.flops | tl.dot |",
         "|---|---|---|---|---|---:|---:|---:|---|"]
  for r in rows:
    for k in r["kernels"]:
      out.append(f"| `{r['case']}` | {r['shape']} | {r['dtype']} | `{k['name']}` | {'x'.join(map(str, k['shape']))} | "
                 f"{k['bytes'] / 1e6:.2f} MB | {k['flops'] / 1e6:.1f} M | {k['kernel_flops'] / 1e6:.1f} M | {'yes' if k['tl.dot'] else ''} |")
    out.append(f"| | | | *minimum for the op* | | {r['min_bytes'] / 1e6:.2f} MB | {r['min_flops'] / 1e6:.1f} M | | |")
  return out


def device_name() -> str:
  if DEVICE == "cuda": return torch.cuda.get_device_name()
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f: cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration): pass
  load = f"; load average {os.getloadavg()[0]:.1f} at start" if hasattr(os, "getloadavg") else ""
  return f"{os.cpu_count()}-core CPU ({cpu}; {THREADS or 'default'} thread(s) for BLAS and torch{load}), lazygrad device `{DEVICE}`"


def write_results(text: str, dev_label: str) -> None:
  """Replace this device kind's previous gpu.py section in RESULTS.md (or append one)."""
  with open(RESULTS) as f: old = f.read()
  marker = f"{SECTION}: {dev_label}"
  start = old.find(marker)
  if start < 0: new = old.rstrip("\n") + "\n\n" + text
  else:
    end = old.find("\n## ", start + len(marker))
    new = old[:start] + text + (old[end + 1:] if end >= 0 else "")
  with open(RESULTS, "w") as f: f.write(new.rstrip("\n") + "\n")


def main():
  t_start = time.perf_counter()
  dev_name = device_name()
  prefixes = [p.strip() for p in ARGS.cases.split(",") if p.strip()]
  cases = build_cases()
  bw, fl = peaks()
  if DEVICE != "cuda": pin_malloc_thresholds()
  if use_compile(): raise_recompile_limit()
  rows = []
  print(f"bench/gpu.py on {dev_name} | torch {torch.__version__} | lazygrad device {DEVICE} | quick={ARGS.quick} | "
        f"torch.compile {'on' if use_compile() else 'off'}", flush=True)
  for make in cases:
    case = make()
    if prefixes and not any(case.name.startswith(p) for p in prefixes): continue
    t0 = time.perf_counter()
    try: row = run_case(case)
    except Exception as e:  # noqa: BLE001  one failing case should not hide the others
      print(f"  {case.name} {case.shape} {case.dtype}: FAILED {type(e).__name__}: {e}", flush=True)
      continue
    rows.append(row)
    comp = f"{row['compile'] * 1e3:9.3f}" if row["compile"] is not None else "        -"
    ko = f"{row['kernels_only'] * 1e3:9.3f}" if row["kernels_only"] is not None else "        -"
    print(f"  {case.name[:34]:<34} {case.shape:<16} {case.dtype:<5} kernels {len(row['kernels']):>2}  lazygrad {row['lazygrad'] * 1e3:9.3f} ms"
          f" (kernels {ko} ms)"
          f"  torch {row['torch'] * 1e3:9.3f} ms  compile {comp} ms  ratio {row['lazygrad'] / row['torch']:6.2f}"
          f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
    del case
  total = time.perf_counter() - t_start
  when = datetime.date.today().isoformat()
  label = "cuda" if DEVICE == "cuda" else f"{DEVICE} (CPU run of the GPU script: not GPU numbers)"
  cmd = "python bench/gpu.py" + (f" --device {DEVICE}" if DEVICE != "cuda" else "") + (" --quick" if ARGS.quick else "") + \
        (f" --compile {ARGS.compile}" if ARGS.compile != "auto" else "") + (f" --cases {ARGS.cases}" if ARGS.cases else "")
  text = "\n".join([
    f"{SECTION}: {label}", "",
    *([] if DEVICE == "cuda" else [
      (f"Not GPU numbers: the same script on `{DEVICE}` ({'numpy kernels' if DEVICE == 'cpu' else 'Triton interpreter'} vs torch on the CPU), "
       "to show it runs and what the Kernel IR accounting says; the GPU table comes from `python bench/gpu.py` on a GPU machine."), ""]),
    f"Date: {when}. Device: {dev_name}. Python {platform.python_version()}, torch {torch.__version__}, "
    f"numpy {np.__version__}" + (f", triton {__import__('triton').__version__}" if DEVICE != "cpu" else "") + f". Command: `{cmd}` ({total:.0f} s).",
    "",
    "Median after warm-up; lazygrad = graph building + realize (scheduling and launches included); `kernels only`: the same "
    "kernels launched again on their buffers, without building or scheduling (the Python launch cost stays). Rates use the op's minimum "
    "FLOPs (matmul-like rows) or minimum bytes (the rest). `/ torch`, `/ compile`: lazygrad time / other (below 1: lazygrad faster). "
    "torch.compile: `dynamic=False`, default mode; `off`: not run (`--compile auto` skips it with --quick and on interp), "
    "`same BLAS call as eager`: plain matmul compiled at the largest size only, `compile budget spent`: --compile-budget reached. "
    "`IR bytes / min`: bytes the lazygrad kernels move by the Kernel IR (outputs written once, input buffers read once) over the op's "
    "minimum; `IR FLOPs / min` likewise, counting the ops under a REDUCE over the iteration space and the epilogue over the "
    "output (Kernel.flops, in the kernel table, counts every op over the whole iteration space)."
    + (" `*`: see notes." if any(r["note"] for r in rows) else ""),
    "", *table(rows, bw, fl), "",
    *[f"`*` {r['case']} {r['shape']} {r['dtype']}: {r['note']}" for r in rows if r["note"]],
    "", "Kernels by case (from `lazygrad.schedule`: bytes and FLOPs by the Kernel IR):", "", *kernel_lines(rows), ""])
  print()
  print(text)
  if not ARGS.no_write:
    write_results(text, label)
    print(f"written to {os.path.relpath(RESULTS)}")
  print(f"total {total:.1f} s")


if __name__ == "__main__": main()
