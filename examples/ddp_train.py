#!/usr/bin/env python3
"""Data-parallel training of the digits CNN (examples/digits_cnn.py's model) with DistributedDataParallel.

Each process trains a replica of the model on its share of every batch (DistributedSampler: a different quarter of
the data per rank with 4 processes, reshuffled each epoch by set_epoch); after backward() the gradients are
averaged across processes (lazygrad.nn.parallel.DistributedDataParallel: bucketed, one all_reduce per bucket), so
every replica takes the same SGD step and the replicas stay identical (checked at the end).

  torchrun --nproc_per_node=2 examples/ddp_train.py               # 2 CPU processes (gloo), or 2 GPUs (NCCL), unchanged
  torchrun --nproc_per_node=2 examples/ddp_train.py --steps 5     # smoke test
  python examples/ddp_train.py                                    # one process (a group of one)

--batch-size is the global batch (each of N processes takes batch-size / N). Rank 0 prints the progress and the
test accuracy (the test set split across ranks, the correct counts summed by all_reduce); every rank prints its own
training loss, test accuracy on its share, and time, with the time its all-reduces took (launch to finish).
"""
from __future__ import annotations
import os
import sys
import time
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # examples/common.py, digits_cnn.py
from common import make_parser, parse_args, summary   # noqa: E402
from digits_cnn import make_model   # noqa: E402
from lazygrad import Tensor, nn, no_grad, optim   # noqa: E402
from lazygrad import distributed as dist   # noqa: E402
from lazygrad.data import DataLoader, DatasetNotFoundError, DistributedSampler, TensorDataset, load_digits   # noqa: E402


def evaluate_shard(model, test: TensorDataset, batch_size: int) -> tuple[int, int, float]:
  """(correct, count, summed loss) over this rank's share of the test set."""
  loader = DataLoader(test, batch_size=batch_size, sampler=DistributedSampler(test, shuffle=False))
  correct, count, loss = 0, 0, 0.0
  model.eval()
  with no_grad():
    for x, y in loader:
      logits = model(x)
      l, pred = logits.cross_entropy(y, reduction="sum"), logits.argmax(1)
      l.realize(pred)
      correct += int((pred.numpy() == y.numpy()).sum())
      count, loss = count + y.shape[0], loss + l.item()
  model.train()
  return correct, count, loss


def replicas_identical(model) -> bool:
  """Every rank holds the same parameters: rank 0's checksum equals everyone's."""
  local = np.array([float(np.abs(p.numpy()).sum()) for p in model.parameters()])
  return all(np.array_equal(c, local) for c in dist.all_gather_object(local))


def main(argv=None) -> float:
  ap = make_parser(__doc__.splitlines()[0], epochs=10, lr=0.1, batch_size=64)
  ap.add_argument("--bucket-cap-mb", type=float, default=25, help="gradient bucket size in MiB (default 25, torch's)")
  ap.add_argument("--backend", default=None, help="gloo or nccl (default: nccl on cuda, else gloo)")
  ap.add_argument("--save", default=None, help="save the trained model here (safetensors, from rank 0)")
  args = parse_args(ap, argv)
  dist.init_process_group(args.backend)
  rank, world = dist.get_rank(), dist.get_world_size()
  if args.batch_size % world: ap.error(f"--batch-size {args.batch_size} must be a multiple of the {world} processes")
  try: train_set, test_set = load_digits(seed=0, flatten=False)
  except DatasetNotFoundError as e: sys.exit(str(e))
  model = make_model()
  ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=args.bucket_cap_mb)   # rank 0's initial weights everywhere
  sampler = DistributedSampler(train_set, shuffle=True, seed=args.seed, drop_last=True)
  loader = DataLoader(train_set, batch_size=args.batch_size // world, sampler=sampler, drop_last=True)
  opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
  total = len(loader) * args.epochs if args.steps is None else args.steps
  sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=max(total, 1), pct_start=0.25, cycle_momentum=False)
  dist.print0(f"digits CNN, data-parallel on {world} process(es) ({dist.get_backend()}, device {args.device}): {len(train_set)} train / "
              f"{len(test_set)} test images, global batch {args.batch_size} ({args.batch_size // world} per rank), "
              f"{ddp.bucket_count} gradient bucket(s), {total} steps")
  step, losses, t_train = 0, [], time.perf_counter()
  for epoch in range(args.epochs):
    sampler.set_epoch(epoch)
    for x, y in loader:
      loss = ddp(x).cross_entropy(y)
      opt.zero_grad()
      loss.backward()                 # averages the gradients across ranks (DDP's backward-end hook)
      opt.step()
      sched.step()
      losses.append(loss.item())
      step += 1
      if step % 20 == 0 or step == total: dist.print0(f"  step {step}/{total}  loss {losses[-1]:.4f}", flush=True)
      if step >= total: break
    if step >= total: break
  seconds = time.perf_counter() - t_train
  correct, count, loss_sum = evaluate_shard(model, test_set, 180)
  sums = Tensor([float(correct), float(count)], device=args.device)
  dist.all_reduce(sums)
  acc = float(sums[0].item() / sums[1].item())
  same = replicas_identical(model)
  st = ddp.stats
  print(f"rank {rank}: train loss {np.mean(losses[-10:]):.4f} (last 10 steps), test accuracy on its {count} images "
        f"{correct / max(count, 1):.2%}, test loss {loss_sum / max(count, 1):.4f}; {step} steps in {seconds:.1f} s "
        f"({1e3 * seconds / max(step, 1):.0f} ms/step), all-reduce {1e3 * st['comm_s'] / max(st['syncs'], 1):.1f} ms/step "
        f"({ddp.bucket_count} bucket(s))", flush=True)
  dist.barrier()
  dist.print0(f"test accuracy {acc:.2%} ({int(sums[1].item())} images); replicas identical: {same}")
  if args.save: dist.save_checkpoint(ddp, args.save)
  if dist.is_main_process():
    summary(f"ddp_train, {world} processes, {step} steps ({1e3 * seconds / max(step, 1):.0f} ms/step)", f"final test accuracy {acc:.2%}", args.t0)
  dist.destroy_process_group()
  return acc


if __name__ == "__main__":
  main()
