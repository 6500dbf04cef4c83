"""DistributedSampler: each process of a data-parallel run takes its own share of a dataset's indices."""
from __future__ import annotations
import math
from typing import Iterator, Optional
import numpy as np
from lazygrad import distributed


def _permutation(n: int, seed: int) -> list[int]:
  """torch.randperm(n) under torch.Generator().manual_seed(seed), so the order matches torch's DistributedSampler
  (numpy's generator when torch is not installed: a different order, the same guarantees)."""
  try: import torch   # optional dependency
  except ImportError: return np.random.default_rng(seed).permutation(n).tolist()
  g = torch.Generator()
  g.manual_seed(seed)
  return torch.randperm(n, generator=g).tolist()


class DistributedSampler:
  """torch.utils.data.DistributedSampler: the indices of rank `rank` among `num_replicas` processes, for
  DataLoader(sampler=...). Every rank shuffles the same way (seed + epoch: call set_epoch(e) before each epoch for a
  new order), then takes every num_replicas-th index starting at its rank. Unless drop_last, the list is first padded
  with its own first indices to a multiple of num_replicas, so every rank gets the same number of samples (a few
  repeated); with drop_last the tail is dropped instead. The index lists equal torch's (the same randperm).
  num_replicas and rank default to lazygrad.distributed's world size and rank (1 and 0 without a process group)."""
  def __init__(self, dataset, num_replicas: Optional[int] = None, rank: Optional[int] = None, shuffle: bool = True, seed: int = 0,
               drop_last: bool = False):
    if num_replicas is None: num_replicas = distributed.get_world_size() if distributed.is_initialized() else 1
    if rank is None: rank = distributed.get_rank() if distributed.is_initialized() else 0
    if not isinstance(num_replicas, int) or num_replicas < 1:
      raise ValueError(f"DistributedSampler: num_replicas must be a positive int, got {num_replicas!r}")
    if not isinstance(rank, int) or not 0 <= rank < num_replicas:
      raise ValueError(f"DistributedSampler: invalid rank {rank!r}, rank should be in the interval [0, {num_replicas - 1}]")
    self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
    self.shuffle, self.seed, self.drop_last, self.epoch = bool(shuffle), int(seed), bool(drop_last), 0
    n = len(dataset)
    if self.drop_last and n % num_replicas != 0: self.num_samples = math.ceil((n - num_replicas) / num_replicas)
    else: self.num_samples = math.ceil(n / num_replicas)
    self.total_size = self.num_samples * num_replicas

  def __iter__(self) -> Iterator[int]:
    n = len(self.dataset)
    indices = _permutation(n, self.seed + self.epoch) if self.shuffle else list(range(n))
    if not self.drop_last:
      pad = self.total_size - len(indices)
      if pad > 0 and indices: indices += (indices * math.ceil(pad / len(indices)))[:pad]
    else: indices = indices[:self.total_size]
    return iter(indices[self.rank:self.total_size:self.num_replicas])

  def __len__(self) -> int: return self.num_samples

  def set_epoch(self, epoch: int) -> None:
    """Use this epoch's order (seed + epoch) from the next iteration on; call it with the same epoch on every rank."""
    self.epoch = int(epoch)
