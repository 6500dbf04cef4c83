"""Graph algorithms stay linear in the number of distinct nodes: structurally equal kernel
bodies built twice (a schedule-cache miss over a known kernel) compare in linear time, and
long chains realize. Each case runs in a subprocess with a timeout, so an exponential walk
fails the test instead of hanging the suite."""
from __future__ import annotations
import os
import subprocess
import sys
import textwrap
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code: str, timeout: int = 120) -> str:
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), LAZYGRAD_DEVICE="cpu")
  env.pop("TRITON_INTERPRET", None)
  r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=timeout)
  assert r.returncode == 0, r.stderr[-2000:]
  return r.stdout


def test_shared_expr_dags_compare_in_linear_time(device):
  if device != "cpu": pytest.skip("device-independent: once")
  # x_{i+1} = x_i + x_i: 2**60 paths over 61 nodes; the dataclass __eq__ walked every path
  out = _run("""
    from lazygrad.kernels.ir import Expr
    from lazygrad.ops import Ops
    from lazygrad.dtype import dtypes
    def build():
      x = Expr(Ops.CONST, (), 1.0, dtypes.float32)
      for _ in range(60): x = Expr(Ops.ADD, (x, x), None, dtypes.float32)
      return x
    a, b = build(), build()
    c = Expr(Ops.NEG, (b,), None, dtypes.float32)
    print(a == b, hash(a) == hash(b), a == c, len(a.walk()))
  """)
  assert out.split() == ["True", "True", "False", "61"]


def test_repeated_chain_misses_the_schedule_cache_in_linear_time(device):
  if device != "cpu": pytest.skip("device-independent: once")
  # (y - 0.5).relu() + 0.5 repeated: relu reads its input three times, so the fused body is a
  # DAG with 3**k paths; a second graph of the same structure (schedule cache cleared) looks its
  # kernel up in the compile cache by value (31 s at k=14 before equality was linear)
  out = _run("""
    import numpy as np
    from lazygrad import Tensor
    import lazygrad.scheduler as S
    x = Tensor(np.linspace(-2, 2, 16).astype(np.float32)).realize()
    def chain(k):
      y = x
      for _ in range(k): y = (y - 0.5).relu() + 0.5
      return y
    first = chain(40).numpy()
    S._schedule_cache.clear()
    second = chain(40).numpy()
    print(bool(np.array_equal(first, second)))
  """)
  assert out.strip() == "True"


def test_long_chain_realizes(device):
  if device != "cpu": pytest.skip("device-independent: once")
  out = _run("""
    import numpy as np
    from lazygrad import Tensor
    x = Tensor(np.ones(8, dtype=np.float32)).realize()
    y = x
    for i in range(3000): y = y * 1.0001 if i % 2 else y + 0.0
    print(round(float(y.numpy()[0]), 4))
  """)
  assert abs(float(out) - 1.0001 ** 1500) < 1e-3
