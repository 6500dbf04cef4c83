"""Data-parallel overhead: all-reduce time per step against step time, DistributedDataParallel on N processes.

  python bench/ddp.py                          # starts 2 cpu processes itself (gloo on localhost)
  torchrun --nproc_per_node=2 bench/ddp.py     # the same under torchrun (NCCL on GPUs)
  python bench/ddp.py --model mlp --caps 25 1 --steps 20

For each model and bucket cap (and overlap off/on when there is more than one bucket), every rank trains
--steps steps after 3 warm-up steps (forward, backward with the gradient sync, SGD step, loss read back) and
reports per step: the step time, the all-reduce time (launch to finish of the bucket collectives:
ddp.stats['comm_s'], which includes waiting for a slower rank), the gradient sync time (the bucket kernels,
hence the whole forward and backward, plus the all-reduce) and the bucket count; then the same model trained
without DDP on the same per-rank batch (the compute alone) and one all_reduce of all gradients by itself
(the transfer alone). Rank 0 prints the table (times are rank 0's). On 2 CPU cores shared by 2 processes the
numbers show what the sync costs, not scaling."""
from __future__ import annotations
import argparse
import os
import socket
import subprocess
import sys
import time
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [ROOT, os.path.join(ROOT, "examples")]   # this checkout's lazygrad, not an installed one
from lazygrad import GlobalCounters, Tensor, nn, optim   # noqa: E402
from lazygrad import distributed as dist   # noqa: E402
import digits_cnn   # noqa: E402


def make(model: str):
  Tensor.manual_seed(0)
  if model == "cnn": return digits_cnn.make_model(), (1, 8, 8)
  return nn.Sequential(nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10)), (256,)


def train(model: str, batch: int, steps: int, ddp_kw=None) -> dict:
  """ms per step (and the DDP's per-step stats when ddp_kw is given) over `steps` steps after 3 warm-up steps."""
  m, shape = make(model)
  Tensor.realize(*m.parameters())
  net = nn.parallel.DistributedDataParallel(m, **ddp_kw) if ddp_kw is not None else m
  opt = optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
  rng = np.random.default_rng(dist.get_rank())
  x, y = rng.standard_normal((batch, *shape)).astype(np.float32), rng.integers(0, 10, batch)
  def step():
    loss = net(Tensor(x)).cross_entropy(Tensor(y))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()
  for _ in range(3): step()
  before = dict(net.stats) if ddp_kw is not None else None
  dist.barrier()
  t0, k0 = time.perf_counter(), GlobalCounters.kernel_count
  for _ in range(steps): step()
  out = {"step_ms": 1e3 * (time.perf_counter() - t0) / steps, "params": sum(p.numel() for p in m.parameters()),
         "kernels": (GlobalCounters.kernel_count - k0) / steps}
  if ddp_kw is not None:
    n = net.stats["syncs"] - before["syncs"]
    out.update(comm_ms=1e3 * (net.stats["comm_s"] - before["comm_s"]) / max(n, 1),
               sync_ms=1e3 * (net.stats["sync_s"] - before["sync_s"]) / max(n, 1), buckets=net.bucket_count, overlap=net.overlap)
  return out


def allreduce_alone(numel: int, repeats: int = 20) -> float:
  """ms of one all_reduce of numel float32s (the gradients of the model as one buffer), by itself."""
  t = Tensor.zeros(numel).contiguous().realize()
  dist.all_reduce(t)
  dist.barrier()
  t0 = time.perf_counter()
  for _ in range(repeats): dist.all_reduce(t)
  return 1e3 * (time.perf_counter() - t0) / repeats


def worker(args) -> None:
  dist.init_process_group()
  world, rows = dist.get_world_size(), []
  for model in args.models:
    base = train(model, args.batch, args.steps)
    alone = allreduce_alone(base["params"])
    for cap in args.caps:
      for overlap in (False, True):
        r = train(model, args.batch, args.steps, dict(bucket_cap_mb=cap, overlap=overlap))
        if overlap and r["buckets"] == 1: continue   # the same run as overlap off
        rows.append((model, r["params"], cap, r["buckets"], overlap, r["step_ms"], r["sync_ms"], r["comm_ms"], alone, base["step_ms"],
                     r["kernels"], base["kernels"]))
  dist.print0(f"{world} processes ({dist.get_backend()}), per-rank batch {args.batch}, {args.steps} steps after 3 warm-up; rank 0's times")
  dist.print0("| model | params | bucket cap MiB | buckets | overlap | step ms | sync ms | all-reduce ms | all-reduce share | "
              "one all_reduce of all grads ms | step ms without DDP | kernels per step (without DDP) |")
  dist.print0("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
  for model, params, cap, buckets, overlap, step, sync, comm, alone, base, kernels, base_kernels in rows:
    dist.print0(f"| {model} | {params} | {cap:g} | {buckets} | {'on' if overlap else 'off'} | {step:.1f} | {sync:.1f} | {comm:.1f} | "
                f"{comm / step:.0%} | {alone:.2f} | {base:.1f} | {kernels:g} ({base_kernels:g}) |")
  dist.destroy_process_group()


def launch(args, argv) -> int:
  """Start --nproc copies of this script as ranks of one gloo group on localhost (what torchrun would do)."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  env = {**os.environ, "WORLD_SIZE": str(args.nproc), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
         "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}
  procs = [subprocess.Popen([sys.executable, __file__, *argv], env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}) for r in range(args.nproc)]
  return max(p.wait() for p in procs)


def main(argv=None) -> None:
  argv = sys.argv[1:] if argv is None else argv
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--nproc", type=int, default=2, help="processes to start when not under torchrun (default 2)")
  ap.add_argument("--models", nargs="+", default=["cnn", "mlp"], choices=["cnn", "mlp"],
                  help="cnn: examples/digits_cnn.py's model; mlp: 256-1024-1024-10 (1.3M parameters)")
  ap.add_argument("--caps", nargs="+", type=float, default=[25, 1], help="bucket caps in MiB (default 25 1)")
  ap.add_argument("--batch", type=int, default=32, help="per-rank batch (default 32)")
  ap.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
  args = ap.parse_args(argv)
  if "RANK" not in os.environ: sys.exit(launch(args, argv))
  worker(args)


if __name__ == "__main__":
  main()
