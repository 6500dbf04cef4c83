"""Datasets and the DataLoader: batches are gathered and stacked as numpy arrays on the
host, then handed to the device as one lazygrad Tensor per field."""
from __future__ import annotations
from typing import Any, Iterator, Optional, Sequence
import numpy as np
from lazygrad.tensor import Tensor


class Dataset:
  """A map-style dataset, as torch.utils.data.Dataset: `len(ds)` items, `ds[i]` is one sample
  (an array, a number, or a tuple/list/dict of them: the fields). Subclasses may also define
  `getbatch(indices)` returning a whole batch at once, fields already stacked (much
  faster than one item at a time); torch's `__getitems__` (a list of samples) works too."""
  def __getitem__(self, index: int): raise NotImplementedError
  def __len__(self) -> int: raise NotImplementedError


def _as_numpy(x) -> np.ndarray:
  if isinstance(x, Tensor): return x.numpy()
  if type(x).__module__.startswith("torch"): return x.detach().cpu().numpy()
  return np.asarray(x)


class TensorDataset(Dataset):
  """Samples are rows of the given arrays (numpy arrays, lazygrad or torch tensors), which
  must agree in their first dimension; sample i is the tuple `(a[i], b[i], ...)`, as
  torch.utils.data.TensorDataset. Differs: the arrays are copied to host numpy arrays once
  (`.arrays`, also as `.tensors`), and samples are numpy rows, not tensors."""
  def __init__(self, *arrays):
    if not arrays: raise ValueError("TensorDataset: needs at least one array")
    self.arrays = tuple(_as_numpy(a) for a in arrays)
    for a in self.arrays:
      if a.ndim == 0: raise ValueError("TensorDataset: arrays must have a first (sample) dimension, got a 0-d array")
    sizes = [len(a) for a in self.arrays]
    if len(set(sizes)) != 1: raise ValueError(f"TensorDataset: arrays differ in their first dimension: {sizes}")
    self.tensors = self.arrays   # torch's attribute name

  def __len__(self) -> int: return len(self.arrays[0])
  def __getitem__(self, index): return tuple(a[index] for a in self.arrays)
  def getbatch(self, indices) -> tuple[np.ndarray, ...]:
    """The rows at `indices` of every array, as a tuple of numpy arrays (one fancy-index per field)."""
    idx = np.asarray(indices, dtype=np.int64)
    return tuple(a[idx] for a in self.arrays)
  def __repr__(self): return f"TensorDataset({len(self)} samples, fields {[(a.shape[1:], a.dtype.name) for a in self.arrays]})"


class Subset(Dataset):
  """The samples of `dataset` at `indices`, in that order, as torch.utils.data.Subset."""
  def __init__(self, dataset: Dataset, indices: Sequence[int]):
    self.dataset, self.indices = dataset, np.asarray(indices, dtype=np.int64)
  def __len__(self) -> int: return len(self.indices)
  def __getitem__(self, index): return self.dataset[int(self.indices[index])]
  def getbatch(self, indices):
    """The samples at positions `indices` of this subset, stacked field by field."""
    return fetch_batch(self.dataset, self.indices[np.asarray(indices, dtype=np.int64)])


def collate(samples: list) -> Any:
  """Stack a list of samples field by field into numpy arrays (torch's default_collate,
  on the host): tuples and lists stay tuples, dicts stay dicts."""
  first = samples[0]
  if isinstance(first, dict): return {k: collate([s[k] for s in samples]) for k in first}
  if isinstance(first, (tuple, list)):
    if any(len(s) != len(first) for s in samples): raise ValueError("collate: samples have different numbers of fields")
    return tuple(collate(list(field)) for field in zip(*samples))
  arrays = [_as_numpy(s) for s in samples]
  shapes = {a.shape for a in arrays}
  if len(shapes) != 1: raise ValueError(f"collate: samples of one field differ in shape: {sorted(shapes)}")
  return np.stack(arrays)


def fetch_batch(dataset, indices: np.ndarray):
  """The samples at `indices`, stacked field by field into numpy arrays."""
  if hasattr(dataset, "getbatch"): return dataset.getbatch(indices)
  if hasattr(dataset, "__getitems__"): return collate(list(dataset.__getitems__(indices.tolist())))
  return collate([dataset[int(i)] for i in indices])


def _to_tensors(batch, device):
  if isinstance(batch, dict): return {k: _to_tensors(v, device) for k, v in batch.items()}
  if isinstance(batch, tuple): return tuple(_to_tensors(b, device) for b in batch)
  return Tensor(np.asarray(batch), device=device)


class DataLoader:
  """Iterate over `dataset` in batches of lazygrad Tensors (one Tensor per field, on `device`),
  as torch.utils.data.DataLoader with the default collate: a (x, y) dataset gives (x, y)
  batches with a leading batch dim of batch_size.

  shuffle: a new permutation each epoch (each `iter()`), drawn from a numpy Generator
  seeded by `seed` (None: fresh OS entropy), so two loaders with the same seed give the
  same batches epoch after epoch. drop_last: skip the last, smaller batch. sampler: an
  iterable of indices with a len (a DistributedSampler) giving each epoch's order instead
  (not with shuffle, as torch).
  Differs from torch: no worker processes, batch samplers, collate_fn or pin_memory; batches
  are gathered on the host with the dataset's getbatch when it has one; `seed` replaces
  torch's generator argument.
  """
  def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
               seed: Optional[int] = None, device=None, sampler=None):
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
      raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
    if sampler is not None and shuffle: raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
    self.sampler = sampler
    self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), bool(shuffle), bool(drop_last)
    self.seed, self.device = seed, device
    self.generator = np.random.default_rng(seed)

  def __len__(self) -> int:
    n = len(self.sampler) if self.sampler is not None else len(self.dataset)
    return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

  def batch_indices(self) -> Iterator[np.ndarray]:
    """The index arrays of one epoch (advances the shuffling generator when shuffle=True)."""
    if self.sampler is not None: order = np.fromiter(iter(self.sampler), dtype=np.int64)
    else: order = self.generator.permutation(len(self.dataset)) if self.shuffle else np.arange(len(self.dataset))
    n = len(order)
    stop = n - n % self.batch_size if self.drop_last else n
    for start in range(0, stop, self.batch_size):
      yield order[start:start + self.batch_size]

  def __iter__(self):
    for idx in self.batch_indices():
      yield _to_tensors(fetch_batch(self.dataset, idx), self.device)
