#!/usr/bin/env python3
"""Training-step time of issue #11's three workloads: torch eager vs lazygrad eager vs lazygrad jitted.

  python bench/step.py                          # mlp,cnn,lm at 1 and 2 threads, 20 timed steps, + the elementwise chain
  python bench/step.py --quick                  # a short run (1 thread, 5 timed steps, chain at 1e6 only)
  python bench/step.py --workloads mlp --threads 1 --steps 50
  python bench/step.py --write                  # also rewrite the "Step time (bench/step.py)" section of bench/RESULTS.md
  python bench/step.py --kernels 8              # also the 8 costliest kernels of a lazygrad eager step, per workload

A CPU benchmark: lazygrad runs on its `cpu` device (numpy kernels) and torch on the CPU, whatever LAZYGRAD_DEVICE says.

The models, data and optimizers are bench/step_models.py's (the same definitions in both frameworks; its check
mode asserts the losses agree). Each thread count runs in a child process whose OMP/OPENBLAS/MKL_NUM_THREADS are
set before numpy and torch load (torch.set_num_threads too), so BLAS really gets that many threads; glibc's malloc
thresholds are pinned (MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ = 1 GiB, as bench/fusion.py) so big
temporaries are not page-faulted afresh depending on history (--default-malloc keeps glibc's behaviour).

Steps of the three variants alternate (in a rotating order) in one process, so machine noise hits them alike; each
gets --warmup steps first (the JIT captures on its first calls), then the median of --steps timed steps. A step is
`loss = step(x, y); loss.item()` (forward, backward, optimizer update, the loss read back), batches pre-loaded.

Columns: ms/step (median wall time; IQR = spread of the middle half); ratio to torch eager; CPU ms/step (median
process CPU time, time.process_time: on a shared machine it leaves out the time the process waited for a core, so
at one thread its ratio is the steadier one; with two threads it adds both threads' time); kernels/step (GlobalCounters
.kernel_count delta); Python ms/step = wall minus time inside kernels (GlobalCounters.time_sum_s: on cpu the numpy
kernels are synchronous, so this is graph building + scheduling + launching, or the JIT's replay overhead); peak
intermediate bytes, i.e. the most bytes allocated during one step and alive at once (memory that existed before
the step is not counted, even where the step frees it):
  - torch eager: torch.profiler.profile(profile_memory=True) over one step, running sum of its [memory]
    allocation/free events. Sees every allocation of torch's CPU allocator (temporaries inside ops included);
    not the Python objects, and not memory freed in the step that was allocated before it (torch warns).
  - lazygrad eager: every lazygrad Buffer created during one step (Buffer.__init__ wrapped for that step, a
    weakref finalizer per buffer): what a memory planner would plan. numpy temporaries inside one kernel (e.g.
    np.matmul's result before its copy into the output buffer) are not counted.
  - lazygrad jitted: the bytes of the temporaries' allocations from the JIT's own figures (`jitted.stats`:
    planned_bytes, and unplanned_bytes = one buffer per temporary) plus the peak of the Buffers one replay
    allocates (its outputs: gradients, new parameter values unless written in place, the loss), measured as for
    eager: an upper bound of the step's peak (the outputs need not all be alive while the temporaries are). "n/a"
    until lazygrad.jit exists or when it exposes none.
lazygrad.jit is looked up with getattr: until it exists, the jitted rows say "n/a". The JIT's losses are compared
with the eager copy's, step by step (they should be bitwise equal: the same batches in the same order).

The elementwise chain `exp(relu(a*b+c)*d).sum()` over n fp32 (inputs realized beforehand; lazygrad = graph
building + realize + item()) against the same numpy expression (np.maximum for relu), alternating, median.
"""
from __future__ import annotations
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import weakref
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "RESULTS.md")
SECTION = "## Step time (bench/step.py)"
VARIANTS = ("torch eager", "lazygrad eager", "lazygrad jit")


# ---------------------------------------------------------------- child: measure at one thread count
def median(xs: list) -> float:
  """The median of a non-empty list."""
  s = sorted(xs)
  n = len(s)
  return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def quartiles(xs: list) -> tuple[float, float]:
  """The 25th and 75th percentile (nearest rank)."""
  s = sorted(xs)
  return s[len(s) // 4], s[(3 * len(s)) // 4]


class BufferPeak:
  """Within the `with`, the peak bytes of lazygrad Buffers created inside it and alive at once."""
  def __init__(self, buffer_cls):
    self.cls, self.live, self.peak = buffer_cls, 0, 0

  def _free(self, n: int) -> None:
    self.live -= n

  def __enter__(self):
    orig = self.orig = self.cls.__init__
    def init(buf, *args, **kwargs):
      orig(buf, *args, **kwargs)
      self.live += buf.nbytes
      self.peak = max(self.peak, self.live)
      weakref.finalize(buf, self._free, buf.nbytes)
    self.cls.__init__ = init
    return self

  def __exit__(self, *exc):
    self.cls.__init__ = self.orig


def torch_step_peak(torch, run) -> int:
  """Peak bytes torch's CPU allocator holds for allocations made during run() (torch.profiler memory events)."""
  sys.stdout.flush(); sys.stderr.flush()
  saved = [os.dup(1), os.dup(2)]
  null = os.open(os.devnull, os.O_WRONLY)
  try:   # the profiler prints start/stop lines and a warning per block allocated before it started
    os.dup2(null, 1); os.dup2(null, 2)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof: run()
  finally:
    os.dup2(saved[0], 1); os.dup2(saved[1], 2)
    for fd in saved + [null]: os.close(fd)
  events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"), key=lambda e: e.start_ns())
  live = peak = 0
  for e in events:
    live += e.nbytes()
    peak = max(peak, live)
  return peak


class KernelTimes:
  """Within the `with`, the time of every kernel lazygrad's executor launches, summed by kernel name per step
  (it wraps executor._count, which receives each launch's time; an executor without it leaves nothing). Call
  next_step() between steps; top() takes the median over steps, so a step preempted on a busy machine does not
  decide the ranking."""
  def __init__(self, executor):
    self.mod, self.steps = executor, [{}]

  def next_step(self) -> None:
    """Start the next step's tally."""
    self.steps.append({})

  def __enter__(self):
    self.orig = orig = getattr(self.mod, "_count", None)
    if orig is None: return self
    def count(it, config, buf, ins, dt):
      t, n = self.steps[-1].get(it.kernel.name, (0.0, 0))
      self.steps[-1][it.kernel.name] = (t + dt, n + 1)
      return orig(it, config, buf, ins, dt)
    self.mod._count = count
    return self

  def __exit__(self, *exc):
    if self.orig is not None: self.mod._count = self.orig

  def top(self, n: int) -> list:
    """The n costliest kernel names as (name, median ms per step, launches per step), costliest first."""
    steps = [s for s in self.steps if s]
    names = {k for s in steps for k in s}
    med = {k: (median([s.get(k, (0.0, 0))[0] for s in steps]) * 1e3, max(s.get(k, (0.0, 0))[1] for s in steps)) for k in names}
    return [(k, ms, c) for k, (ms, c) in sorted(med.items(), key=lambda kv: -kv[1][0])[:n]]


def jit_peaks(stats) -> tuple:
  """(planned, unplanned) bytes of a jitted function's temporaries from its stats (a dict or an object), None where
  absent: `planned_bytes` / `unplanned_bytes` (lazygrad.jit's Stats), else the first numeric entries whose names
  contain "planned" / "unplanned" (or "with" / "without")."""
  if stats is None: return None, None
  items = stats.items() if isinstance(stats, dict) else vars(stats).items() if hasattr(stats, "__dict__") else []
  nums = {str(k).lower(): v for k, v in items if isinstance(v, (int, float)) and not isinstance(v, bool)}
  if "planned_bytes" in nums or "unplanned_bytes" in nums: return nums.get("planned_bytes"), nums.get("unplanned_bytes")
  def pick(want, avoid):
    return next((v for k, v in nums.items() if any(w in k for w in want) and not any(a in k for a in avoid)), None)
  return pick(("planned", "with"), ("unplanned", "without", "naive")), pick(("unplanned", "without", "naive"), ())


def measure_workload(name: str, args, lazygrad, torch) -> dict:
  """Alternating timed steps of the three variants of workload `name`, then one untimed step each for memory."""
  from step_models import build, DESCRIPTIONS
  from lazygrad import GlobalCounters
  from lazygrad.runtime.buffer import Buffer
  import lazygrad.runtime.executor as executor
  w = build(name, "full")
  copies = {"torch eager": w.torch(), "lazygrad eager": w.lazygrad(), "lazygrad jit": w.lazygrad()}
  runs = {v: c.step for v, c in copies.items()}
  jit, notes, jitted = getattr(lazygrad, "jit", None), [], None
  if jit is None: del runs["lazygrad jit"]
  else: jitted = runs["lazygrad jit"] = jit(copies["lazygrad jit"].step)
  rec = {v: {"ms": [], "cpu_ms": [], "kernels": [], "py_ms": [], "loss": []} for v in runs}

  def one(v: str, i: int, timed: bool) -> None:
    x, y = copies[v].batches[i % len(copies[v].batches)]
    k0, s0 = GlobalCounters.kernel_count, GlobalCounters.time_sum_s
    t0, c0 = time.perf_counter(), time.process_time()
    loss = runs[v](x, y).item()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    if not timed: return
    r = rec[v]
    r["ms"].append(dt * 1e3); r["cpu_ms"].append(cpu * 1e3); r["loss"].append(loss)
    r["kernels"].append(GlobalCounters.kernel_count - k0)
    r["py_ms"].append((dt - (GlobalCounters.time_sum_s - s0)) * 1e3)

  order = list(runs)
  for i in range(args.warmup + args.steps):
    for v in [order[(i + j) % len(order)] for j in range(len(order))]:   # rotating: none always runs after another
      try: one(v, i, i >= args.warmup)
      except Exception as e:   # a failing JIT must not take the torch and eager numbers down with it
        if v != "lazygrad jit": raise
        notes.append(f"lazygrad jit failed at step {i}: {type(e).__name__}: {str(e)[:200]}")
        order.remove(v); del runs[v]; rec.pop(v)
  out = {"name": name, "desc": DESCRIPTIONS[name], "variants": {}, "notes": notes,
         "jit": "absent" if jit is None else "ok" if "lazygrad jit" in rec else "failed"}
  for v, r in rec.items():
    q1, q3 = quartiles(r["ms"])
    lg = v != "torch eager"
    out["variants"][v] = {"ms": median(r["ms"]), "iqr": q3 - q1, "cpu_ms": median(r["cpu_ms"]), "losses": r["loss"],
                          "kernels": median(r["kernels"]) if lg else None, "py_ms": median(r["py_ms"]) if lg else None}
  # memory: one more (untimed) step each
  i = args.warmup + args.steps
  th = copies["torch eager"]
  out["variants"]["torch eager"]["peak"] = torch_step_peak(torch, lambda: th.step(*th.batches[i % len(th.batches)]).item())
  with BufferPeak(Buffer) as bp: one("lazygrad eager", i, False)
  out["variants"]["lazygrad eager"]["peak"] = bp.peak
  if args.kernels:   # and a few more for the costliest kernels of an eager step
    with KernelTimes(executor) as kt:
      for k in range(5):
        kt.next_step()
        one("lazygrad eager", i + 1 + k, False)
    out["kernels"] = kt.top(args.kernels)
  if "lazygrad jit" in rec:
    # a replay allocates its outputs (gradients, new parameter values, the loss); its temporaries live in the
    # allocations the JIT planned at capture: the step's peak is at most their sum
    with BufferPeak(Buffer) as bp: one("lazygrad jit", i, False)
    planned, unplanned = jit_peaks(getattr(jitted, "stats", None))
    out["variants"]["lazygrad jit"].update(peak=None if planned is None else planned + bp.peak, replay_alloc=bp.peak,
                                           peak_unplanned=None if unplanned is None else unplanned + bp.peak)
    a, b = rec["lazygrad eager"]["loss"], rec["lazygrad jit"]["loss"]
    diff = max(abs(p - q) for p, q in zip(a, b))
    notes.append("jit losses bitwise equal to eager's over the timed steps" if diff == 0
                 else f"jit losses differ from eager's: max |diff| {diff:.3g}")
  a, b = rec["lazygrad eager"]["loss"][-1], rec["torch eager"]["loss"][-1]
  out["drift"] = abs(a - b) / max(abs(b), 1e-12)
  return out


def measure_chain(n: int, repeats: int, lazygrad, np) -> dict:
  """exp(relu(a*b+c)*d).sum() over n fp32: lazygrad (build + realize + item) vs numpy, alternating, medians."""
  from lazygrad import GlobalCounters, Tensor
  rng = np.random.default_rng(0)
  arrs = [(rng.standard_normal(n) * 0.5).astype(np.float32) for _ in range(4)]
  a, b, c, d = arrs
  A, B, C, D = [Tensor(x) for x in arrs]
  Tensor.realize(A, B, C, D)
  def lg(): return ((A * B + C).relu() * D).exp().sum().item()
  def npy(): return float(np.exp(np.maximum(a * b + c, 0) * d).sum())
  got, want = lg(), npy()   # warm-up (schedule cache, compile cache) and the agreement check
  lt, nt, kernels, py = [], [], [], []
  for i in range(repeats):
    for f in ((lg, npy) if i % 2 else (npy, lg)):
      k0, s0, t0 = GlobalCounters.kernel_count, GlobalCounters.time_sum_s, time.perf_counter()
      f()
      dt = time.perf_counter() - t0
      if f is npy: nt.append(dt * 1e3)
      else: lt.append(dt * 1e3); kernels.append(GlobalCounters.kernel_count - k0); py.append((dt - (GlobalCounters.time_sum_s - s0)) * 1e3)
  return {"n": n, "lg_ms": median(lt), "np_ms": median(nt), "kernels": median(kernels), "py_ms": median(py),
          "rel_err": abs(got - want) / abs(want)}


def child(args) -> None:
  """Measure everything at args.threads threads (env already set by the parent) and write JSON to args.json_out."""
  import numpy as np
  import torch
  sys.path[:0] = [HERE, os.path.join(HERE, "..")]
  import lazygrad
  torch.set_num_threads(args.threads)
  load0 = os.getloadavg()
  res = {"threads": args.threads, "torch_threads": torch.get_num_threads(), "workloads": [], "chain": [],
         "device": lazygrad.Tensor([0.0]).device}
  for name in args.workloads.split(","):
    t0 = time.perf_counter()
    res["workloads"].append(measure_workload(name, args, lazygrad, torch))
    print(f"  [{args.threads} thread(s)] {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
  for n in args.chain:
    res["chain"].append(measure_chain(n, args.chain_repeats, lazygrad, np))
    print(f"  [{args.threads} thread(s)] chain {n:.0e}", file=sys.stderr, flush=True)
  res["load"] = [load0, os.getloadavg()]
  with open(args.json_out, "w") as f: json.dump(res, f)


# ---------------------------------------------------------------- parent: run children, format, write
def fmt_ms(v) -> str:
  """A time in ms with 3 significant digits, or "n/a"."""
  if v is None: return "n/a"
  return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def fmt_bytes(v) -> str:
  """Bytes as KiB/MiB, or "n/a"."""
  if v is None: return "n/a"
  return f"{v / 2**20:.2f} MiB" if v >= 2**20 else f"{v / 2**10:.0f} KiB"


def step_table(results: list) -> list[str]:
  """The markdown table of every thread count, workload and variant."""
  lines = ["| threads | workload | variant | ms/step | IQR ms | / torch eager | CPU ms/step | / torch (CPU) | kernels/step "
           "| Python ms/step | Python share | peak intermediate | peak unplanned (jit) |",
           "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for res in results:
    for w in res["workloads"]:
      base, cbase = w["variants"]["torch eager"]["ms"], w["variants"]["torch eager"]["cpu_ms"]
      for v in VARIANTS:
        r = w["variants"].get(v)
        if r is None:
          lines.append(f"| {res['threads']} | {w['name']} | {v} | n/a | | | | | | | | n/a | n/a |")
          continue
        py, k = r.get("py_ms"), r.get("kernels")
        lg = (f"{k:.0f} | {fmt_ms(py)} | {py / r['ms']:.0%}") if py is not None else " | | "
        unpl = fmt_bytes(r.get("peak_unplanned")) if v == "lazygrad jit" else ""
        lines.append(f"| {res['threads']} | {w['name']} | {v} | {fmt_ms(r['ms'])} | {fmt_ms(r['iqr'])} | {r['ms'] / base:.2f}x "
                     f"| {fmt_ms(r['cpu_ms'])} | {r['cpu_ms'] / cbase:.2f}x | {lg} | {fmt_bytes(r.get('peak'))} | {unpl} |")
  return lines


def chain_table(results: list) -> list[str]:
  """The markdown table of the elementwise chain."""
  lines = ["| threads | n | lazygrad ms | numpy ms | lazygrad / numpy | kernels | lazygrad Python ms | rel. diff of the sums |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for res in results:
    for c in res["chain"]:
      lines.append(f"| {res['threads']} | {c['n']:.0e} | {fmt_ms(c['lg_ms'])} | {fmt_ms(c['np_ms'])} | {c['lg_ms'] / c['np_ms']:.2f}x "
                   f"| {c['kernels']:.0f} | {fmt_ms(c['py_ms'])} | {c['rel_err']:.1e} |")
  return lines


def chain_section(results: list) -> list[str]:
  """The chain's paragraph and table, or nothing when it was not run."""
  if not any(r["chain"] for r in results): return []
  return ["Elementwise chain `exp(relu(a*b+c)*d).sum()`, fp32, lazygrad (graph building + realize + item) vs numpy "
          "(`np.exp(np.maximum(a*b+c, 0)*d).sum()`), median of alternating runs:", "", *chain_table(results), ""]


def targets(results: list) -> list[str]:
  """Issue #11's targets against the first (fewest threads) run: met, not met, or not measurable yet."""
  res = results[0]
  out = []
  for w in res["workloads"]:
    t, j = w["variants"]["torch eager"], w["variants"].get("lazygrad jit")
    e = w["variants"]["lazygrad eager"]
    if j is None:
      why = "no lazygrad.jit" if w.get("jit", "absent") == "absent" else "lazygrad.jit failed: see the notes"
      out.append(f"- {w['name']}: jitted within 2x of torch eager: n/a ({why}); eager is {e['ms'] / t['ms']:.1f}x "
                 f"({e['cpu_ms'] / t['cpu_ms']:.1f}x in CPU time)")
      continue
    ratio, share = j["ms"] / t["ms"], j["py_ms"] / j["ms"]
    line = (f"- {w['name']}: jitted {ratio:.2f}x torch eager ({'met' if ratio <= 2 else 'NOT met'}: <= 2x; "
            f"{j['cpu_ms'] / t['cpu_ms']:.2f}x in CPU time)")
    if w["name"] != "mlp": line += f"; replay overhead {share:.0%} of the step ({'met' if share <= 0.05 else 'NOT met'}: <= 5%)"
    if j.get("peak") is not None and t.get("peak"):
      line += f"; planned peak {fmt_bytes(j['peak'])} vs torch {fmt_bytes(t['peak'])} ({'met' if j['peak'] <= t['peak'] else 'NOT met'})"
    else: line += "; planned peak n/a"
    out.append(line)
  for c in res["chain"]:
    r = c["lg_ms"] / c["np_ms"]
    out.append(f"- chain {c['n']:.0e}: {r:.2f}x numpy ({'met' if r <= 1.5 else 'NOT met'}: <= 1.5x)")
  return out


def machine() -> str:
  """CPU model, core count, Python/numpy/torch versions and the git commit."""
  try:
    with open("/proc/cpuinfo") as f: cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration): cpu = platform.processor() or "unknown CPU"
  vers = subprocess.run([sys.executable, "-c", "import numpy, torch; print(numpy.__version__, torch.__version__)"],
                        capture_output=True, text=True).stdout.split()
  git = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
  dirty = subprocess.run(["git", "-C", HERE, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
  return (f"{os.cpu_count()}-core CPU ({cpu}), Python {platform.python_version()}, numpy {vers[0] if vers else '?'}, "
          f"torch {vers[1] if len(vers) > 1 else '?'}, tree at {git or '?'}{' (with uncommitted changes)' if dirty else ''}")


def report(results: list, command: str, seconds: float, args) -> str:
  """The section's markdown: when, where, how, the tables, the targets and notes."""
  loads = "; ".join(f"{r['threads']} thread(s): {r['load'][0][0]:.1f} at start, {r['load'][1][0]:.1f} at end" for r in results)
  notes = [f"- {w['name']} ({r['threads']} thread(s)): {n}" for r in results for w in r["workloads"] for n in w["notes"]]
  cores = os.cpu_count() or 1
  for r in results:   # torch's OpenMP threads spin while they wait: on a busy machine more threads measure contention
    if r["threads"] > 1 and max(r["load"][0][0], r["load"][1][0]) + r["threads"] > cores + 0.5:
      notes.append(f"- {r['threads']} threads: the load average ({r['load'][0][0]:.1f} -> {r['load'][1][0]:.1f}) plus "
                   f"{r['threads']} threads exceeds the {cores} cores, so these rows measure contention more than the frameworks "
                   "(torch's OpenMP workers spin-wait for cores); rerun on an idle machine")
  drift = [f"{w['name']} {w['drift']:.1e}" for w in results[0]["workloads"]]
  descs = "\n".join(f"- `{w['name']}`: {w['desc']}" for w in results[0]["workloads"])
  lines = [SECTION, "",
           f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Machine: {machine()}; lazygrad device `{results[0]['device']}`. "
           f"Load average (1 min; the machine is shared): {loads}. Command: `{command}` ({seconds:.0f} s). "
           f"{args.warmup} warm-up steps, then the median of {args.steps} timed steps; the three variants alternate.",
           "", "Workloads (bench/step_models.py, the same definitions, initial values, batches and optimizer in both):", descs, "",
           *step_table(results), "",
           "Python ms/step: wall minus time inside kernels (graph building, scheduling, launching; for the JIT its replay "
           "overhead). Peak intermediate: the most bytes allocated during one step and alive at once (torch: "
           "torch.profiler memory events; lazygrad eager: its Buffers, without numpy temporaries inside a kernel; "
           "jit: the temporaries' planned (unplanned) bytes from lazygrad.jit's stats plus the Buffers a replay allocates: "
           "an upper bound). See bench/step.py's docstring for the limits.",
           f"Loss of the last timed step, lazygrad eager vs torch, relative difference: {', '.join(drift)}.", "",
           *chain_section(results), "Issue #11's targets (first thread count):", *targets(results)]
  for r in results[:1]:   # kernel times at more threads on a shared machine mostly rank BLAS's waits
    for w in r["workloads"]:
      if not w.get("kernels"): continue
      lines += ["", f"Costliest kernels of a lazygrad eager step, {w['name']}, {r['threads']} thread(s) "
                "(median over 5 steps of the kernel's ms per step; launches per step):",
                *(f"- `{name}`: {ms:.2f} ms, {c}x" for name, ms, c in w["kernels"])]
  if notes: lines += ["", "Notes:", *notes]
  return "\n".join(lines) + "\n"


def write_section(text: str, path: str = RESULTS) -> None:
  """Replace the SECTION of path (up to the next `## ` heading) with text, or append it; other sections are kept."""
  old = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
  pat = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
  new = pat.sub(lambda _: text + "\n", old, count=1) if pat.search(old) else old.rstrip("\n") + "\n\n" + text
  with open(path, "w") as f: f.write(new)


def run_child(threads: int, args) -> dict:
  """One child process at `threads` threads (BLAS and OpenMP env set before anything loads); its JSON."""
  env = dict(os.environ, LAZYGRAD_DEVICE="cpu")   # kernel times (time_sum_s) are synchronous only there
  for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"): env[var] = str(threads)
  if not args.default_malloc: env.update(MALLOC_MMAP_THRESHOLD_=str(1 << 30), MALLOC_TRIM_THRESHOLD_=str(1 << 30))
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "result.json")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--threads", str(threads), "--json-out", out,
           "--workloads", args.workloads, "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--chain", ",".join(str(n) for n in args.chain) or "0", "--chain-repeats", str(args.chain_repeats),
           "--kernels", str(args.kernels)]
    subprocess.run(cmd, env=env, check=True)
    with open(out) as f: return json.load(f)


def parse_args(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[1:9]),
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--workloads", default="mlp,cnn,lm", help="comma-separated subset of mlp,cnn,lm")
  ap.add_argument("--threads", default=None, help="comma-separated thread counts (default 1,2; --quick: 1)")
  ap.add_argument("--steps", type=int, default=None, help="timed steps per variant (default 20; --quick: 5)")
  ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5, at least 4: the JIT captures)")
  ap.add_argument("--chain", default=None, help="sizes of the elementwise chain (default 1e6,1e7; --quick: 1e6; 0: none)")
  ap.add_argument("--chain-repeats", type=int, default=None, help="timed runs of the chain (default 20; --quick: 5)")
  ap.add_argument("--kernels", type=int, default=0, help="also list the N costliest kernels of a lazygrad eager step "
                  "(first thread count)")
  ap.add_argument("--json", help="also save the raw measurements (every thread count) to this JSON file")
  ap.add_argument("--quick", action="store_true", help="a short run")
  ap.add_argument("--write", action="store_true", help=f"rewrite the '{SECTION[3:]}' section of bench/RESULTS.md")
  ap.add_argument("--default-malloc", action="store_true", help="keep glibc's adaptive malloc thresholds")
  ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  ap.add_argument("--json-out", help=argparse.SUPPRESS)
  args = ap.parse_args(argv)
  q = args.quick
  args.threads = args.threads or ("1" if q else "1,2")
  args.steps = args.steps or (5 if q else 20)
  args.warmup = max(4, args.warmup if args.warmup is not None else 5)
  args.chain_repeats = args.chain_repeats or (5 if q else 20)
  chain = args.chain or ("1e6" if q else "1e6,1e7")
  args.chain = [int(float(n)) for n in chain.split(",") if float(n) > 0]
  bad = set(args.workloads.split(",")) - {"mlp", "cnn", "lm"}
  if bad: ap.error(f"--workloads: unknown {', '.join(sorted(bad))} (expected a subset of mlp,cnn,lm)")
  if args.steps < 1: ap.error("--steps must be at least 1")
  if args.child: args.threads = int(args.threads)
  else: args.thread_list = [int(t) for t in args.threads.split(",")]
  return args


def main(argv=None) -> None:
  args = parse_args(argv)
  if args.child: return child(args)
  t0 = time.time()
  results = []
  for threads in args.thread_list:
    print(f"{threads} thread(s): load average {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    results.append(run_child(threads, args))
  command = "python bench/step.py " + " ".join(a for a in (argv if argv is not None else sys.argv[1:]))
  text = report(results, command.strip(), time.time() - t0, args)
  if args.json:
    with open(args.json, "w") as f: json.dump(results, f, indent=1)
  print(text)
  if args.write:
    write_section(text)
    print(f"wrote the '{SECTION[3:]}' section of {os.path.relpath(RESULTS)}", file=sys.stderr)


if __name__ == "__main__":
  main()
