"""Input makers shared by the op tests."""
import numpy as np

rng = np.random.default_rng(0)


def arr(shape, low=-2.0, high=2.0, dtype=np.float32, seed=None):
  r = np.random.default_rng(seed) if seed is not None else rng
  return r.uniform(low, high, size=shape).astype(dtype)


def away_from_zero(shape, lo=0.5, hi=2.0, seed=None):
  """floats with |x| in [lo, hi] and random signs (safe denominators, no ties at 0)."""
  r = np.random.default_rng(seed) if seed is not None else rng
  return (r.uniform(lo, hi, size=shape) * r.choice([-1.0, 1.0], size=shape)).astype(np.float32)
