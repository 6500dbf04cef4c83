"""The numpy renderer's fast elementwise form (in-place temporaries, results written into the output, relu as
np.maximum, a <= b as one less_equal, a + (-b) as np.subtract, WHERE as lib.select's bit blend:
kernels/numpy/elementwise.py) gives the same bits as its plain form (one fresh array per op, np.where), but for
the sign of a nan from a subtraction, kernel by kernel, on random elementwise graphs with broadcasting,
reductions, matmul epilogues, casts and inputs full of -0, nan and inf. Runs on the cpu test device."""
import math
import numpy as np
import pytest
from lazygrad import Tensor, dtypes, schedule
from lazygrad.kernels.numpy import elementwise, lib, pool
from lazygrad.kernels.numpy.render import compile_numpy


@pytest.fixture(autouse=True)
def _cpu_only(device):
  if device != "cpu": pytest.skip("the numpy renderer's own forms")


def _special(shape, seed, dtype=np.float32):
  """Random values with -0, +0, nan (both signs), +-inf and subnormals mixed in."""
  rng = np.random.default_rng(seed)
  x = rng.standard_normal(shape).astype(np.float32) * 3
  pool = np.array([-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-40, -1e-40], dtype=np.float32)
  hit = rng.random(shape) < 0.2
  x[hit] = rng.choice(pool, int(hit.sum()))
  return x.astype(dtype)


def _nan_sign_free(x: np.ndarray) -> bytes:
  """x's bytes with every nan made the positive one: a - b as np.subtract keeps a nan b's sign, a + (-b) flips it
  (the documented difference); every other bit must match."""
  if x.dtype.kind != "f": return x.tobytes()
  x = x.copy()
  x[np.isnan(x)] = np.nan
  return x.tobytes()


def _run_both(*outs):
  """Run every kernel of the schedule under the fast and the plain renderer on the same inputs; assert equal bits."""
  produced: dict[int, np.ndarray] = {}
  for it in schedule(*outs):
    k = it.kernel
    ins = [np.ascontiguousarray(n.buffer.numpy()).reshape(-1) if n.realized else produced[id(n)] for n in it.inputs]
    results = []
    for fast in (True, False):
      elementwise.FAST = fast
      try: prog = compile_numpy(k)
      finally: elementwise.FAST = True
      out = np.full(math.prod(it.out.shape), 7, dtype=it.out.dtype.np)
      with np.errstate(all="ignore"): prog.fn([out] + [a.copy() for a in ins], it.var_values)
      results.append((out, prog.source))
    (fast_out, fast_src), (plain_out, plain_src) = results
    assert _nan_sign_free(fast_out) == _nan_sign_free(plain_out), f"{k.name}: fast and plain forms differ\n{fast_src}\n{plain_src}"
    produced[id(it.out)] = fast_out


GRAPHS = {
  "chain": lambda a, b, c, d: ((a * b + c).relu() * d).exp().sum(),
  "relu_and_grad_mask": lambda a, b, c, d: (a.relu() * b + (a > 0).where(c, 0) - (a <= 0).where(0, d)),
  "where_both_arrays": lambda a, b, c, d: (a < b).where(c * 2, d - 1) + (c == d).where(a, b),
  "broadcast_row_col": lambda a, b, c, d: (a[:1] * b[:, :1] + c).maximum(d[:1]) * a,
  "reduce_then_epilogue": lambda a, b, c, d: (a - a.amax(1, keepdim=True)).exp() / ((b * c).sum(1, keepdim=True) + 1),
  "transposed_and_cast": lambda a, b, c, d: ((a.T * b.T).cast(dtypes.float16) + c.T.cast(dtypes.float16)).float() * d.T,
  "int_and_bool": lambda a, b, c, d: (((a * 4).cast(dtypes.int32) * (b * 4).cast(dtypes.int32)) < 3).where(c, d),
  "matmul_epilogue": lambda a, b, c, d: ((a @ b.T) * c[:, :1] + d[:1, :256]).relu() * 0.5,
  "tanh_erf_chain": lambda a, b, c, d: (a * b).tanh() * (c + 1).erf() - d.sigmoid(),
  "gelu_backward_like": lambda a, b, c, d: a * (0.5 * (1 + (b * 0.79).tanh())) + (1 - c * c) * d,
}


@pytest.mark.parametrize("name", GRAPHS)
def test_fast_form_is_bitwise_the_plain_form(name):
  # 256 x 320 float32: 320 KiB temporaries, so the big ones come from the scratch pool
  a, b, c, d = (Tensor(_special((256, 320), s)) for s in range(4))
  _run_both(GRAPHS[name](a, b, c, d))


@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_fast_form_other_float_dtypes(dtype):
  a, b, c, d = (Tensor(_special((200, 700), s, np.dtype(dtype))) for s in range(4))
  _run_both(a.relu() * b, ((a * b + c).relu() * d - (a <= b).where(c, 0)).exp())


def test_gradients_of_an_mlp_are_bitwise_the_plain_form():
  rng = np.random.default_rng(0)
  x = Tensor(rng.standard_normal((512, 64)).astype(np.float32))
  w1 = Tensor(rng.standard_normal((64, 256)).astype(np.float32), requires_grad=True)
  w2 = Tensor(rng.standard_normal((256, 8)).astype(np.float32), requires_grad=True)
  loss = ((x @ w1).gelu(approximate="tanh") @ w2).relu().square().mean()
  loss.backward()
  _run_both(w1.grad, w2.grad)


def test_the_chain_uses_one_temporary():
  # exp(relu(a*b+c)*d).sum(): one new array (a*b, from the scratch pool); every later op writes into it (out=), relu
  # is one np.maximum, and the array goes back to the pool at the end
  a, b, c, d = (Tensor(np.ones(100000, np.float32)) for _ in range(4))
  src, = [it.source for it in schedule(((a * b + c).relu() * d).exp().sum())]
  ops = [line for line in src.splitlines() if "= np." in line]
  assert len(ops) == 5 and sum("out=" not in line or "out=scratch" in line for line in ops) == 1, src
  assert "np.maximum" in src and "np.where" not in src and "less" not in src and "release(" in src, src


# ---- lib.select / select_zero: np.where bit for bit

DTYPES = [np.float32, np.float64, np.float16, np.int8, np.int32, np.int64, np.uint8, np.bool_]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shapes", [((50000,), (50000,), (50000,)), ((300, 1), (1, 200), (300, 200)),
                                    ((300, 200), (1, 200), (300, 1)), ((5, 3), (5, 3), (1, 3))], ids=str)
def test_select_is_np_where(dtype, shapes):
  rng = np.random.default_rng(0)
  c = rng.random(shapes[0]) < 0.5
  a, b = (_special(s, i).astype(dtype) if np.dtype(dtype).kind == "f" else rng.integers(0, 100, s).astype(dtype)
          for i, s in enumerate(shapes[1:]))
  ref = np.where(c, a, b)
  assert lib.select(c, a, b).tobytes() == ref.tobytes()
  zero = np.zeros((), dtype)
  assert lib.select_zero(c, a, True).tobytes() == np.where(c, a, zero).tobytes()
  assert lib.select_zero(c, b, False).tobytes() == np.where(c, zero, b).tobytes()
  full = np.broadcast_shapes(*shapes)
  if a.shape == full:   # into a's own array (what the renderer passes as out=)
    a2 = a.copy()
    assert lib.select(c, a2, b, out=a2).tobytes() == ref.tobytes()


def test_maximum_relu_probe():
  # the renderer writes relu as np.maximum only where it is where(x <= 0, +0, x) bit for bit: float32 and float64 on
  # x86 numpy; float16's maximum keeps -0 and is left as a where
  assert elementwise.maximum_is_relu("float32") and elementwise.maximum_is_relu("float64")
  x = _special(1000, 3)
  y = Tensor(x).relu().numpy()
  assert y.tobytes() == np.where(x <= 0, np.float32(0), x).tobytes()


# ---- the scratch pool (kernels/numpy/pool.py)

def test_scratch_is_reused_after_release_only():
  a = pool.scratch((512, 256), np.float32)   # 512 KiB: pooled
  b = pool.scratch((512, 256), np.float32)
  assert not np.shares_memory(a, b)   # both lent at once: distinct memory
  pool.release(a, a[:3], a.T)   # the same array three times (in-place aliases): returned once
  c = pool.scratch((256, 512), np.float32)
  d = pool.scratch((256, 512), np.float32)
  assert np.shares_memory(c, a) and not np.shares_memory(d, a) and not np.shares_memory(d, b)
  pool.release(b, c, d, np.ones((512, 256), np.float32))   # an array the pool never lent is left alone
  small = pool.scratch((4,), np.float64)   # small arrays are plain np.empty: never pooled
  pool.release(small)
  assert not np.shares_memory(pool.scratch((4,), np.float64), small)


def test_kernels_reusing_pooled_temporaries_stay_correct():
  # the same schedule twice, then a different one: temporaries of one kernel are the next one's scratch
  rng = np.random.default_rng(0)
  xs = [rng.standard_normal((300, 400)).astype(np.float32) for _ in range(3)]
  a, b, c = (Tensor(x) for x in xs)
  ref = np.tanh((xs[0] * xs[1] - xs[2]).astype(np.float64)).astype(np.float32) * xs[0] + np.exp(xs[1])
  for _ in range(3):
    out = ((a * b - c).tanh() * a + b.exp()).numpy()
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal((a * 2 + (b > 0).where(c, a)).numpy(), xs[0] * 2 + np.where(xs[1] > 0, xs[2], xs[0]))
