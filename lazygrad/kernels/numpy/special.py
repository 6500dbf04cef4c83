"""The accurate unary primitives on numpy: TANH, EXPM1, LOG1P and ERF.

float16, bfloat16 and float32 inputs are evaluated in float64 and rounded once to their dtype: the
float64 result is within an ulp of float64, so the rounded one is the correctly rounded value except
for results within 2^-29 relative of a rounding boundary (then 1 ulp off). numpy has no erf: `erf64`
is fdlibm's (FreeBSD's s_erf.c), vectorised, < 1 ulp in float64."""
from __future__ import annotations

import numpy as np

from lazygrad.kernels.numpy.pool import release, scratch


def _in_float64(fn, x: np.ndarray, ufunc: bool = True) -> np.ndarray:
  """fn evaluated in float64 and rounded to x's dtype (float64 inputs directly); overflow to inf and nan are results, not
  warnings, as in the other ops' numpy functions. A ufunc runs in place on its float64 copy of x (one float64
  temporary, not two); both arrays come from the scratch pool (the result is the caller's to release)."""
  x = np.asarray(x)
  with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
    if x.dtype == np.float64: return fn(x)
    wide = scratch(x.shape, np.float64)
    np.copyto(wide, x, casting="unsafe")   # astype's conversion, into a pooled array
    res = fn(wide, out=wide) if ufunc else fn(wide)
    out = scratch(x.shape, x.dtype)
    np.copyto(out, res, casting="unsafe")   # rounded once, as astype
    release(wide)
    return out


def tanh(x: np.ndarray) -> np.ndarray:
  """torch.tanh (np.tanh in float64)."""
  return _in_float64(np.tanh, x)


def expm1(x: np.ndarray) -> np.ndarray:
  """torch.expm1: exp(x) - 1 without the cancellation near 0 (np.expm1 in float64)."""
  return _in_float64(np.expm1, x)


def log1p(x: np.ndarray) -> np.ndarray:
  """torch.log1p: log(1 + x) without the cancellation near 0 (np.log1p in float64)."""
  return _in_float64(np.log1p, x)


def erf(x: np.ndarray) -> np.ndarray:
  """torch.erf (erf64 in float64)."""
  return _in_float64(erf64, x, ufunc=False)


def _poly(z, coefs):
  """coefs[0] + z * (coefs[1] + z * (...)), Horner's rule in place."""
  acc = z * coefs[-1]
  for c in reversed(coefs[1:-1]):
    acc += c
    acc *= z
  acc += coefs[0]
  return acc


# fdlibm s_erf.c: erf on [0, 0.84375) is x + x * PP(x^2) / QQ(x^2); on [0.84375, 1.25) ERX + PA(s) / QA(s), s = |x| - 1;
# on [1.25, 6) 1 - exp(-x^2 - 0.5625 + R(1/x^2) / S(1/x^2)) / x (RA/SA below 1/0.35, RB/SB above); 1 from 6 on
_ERX = 8.45062911510467529297e-01
_PP = (1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02, -5.77027029648944159157e-03,
       -2.37630166566501626084e-05)
_QQ = (1.0, 3.97917223959155352819e-01, 6.50222499887672944485e-02, 5.08130628187576562776e-03, 1.32494738004321644526e-04,
       -3.96022827877536812320e-06)
_PA = (-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01, 3.18346619901161753674e-01,
       -1.10894694282396677476e-01, 3.54783043256182359371e-02, -2.16637559486879084300e-03)
_QA = (1.0, 1.06420880400844228286e-01, 5.40397917702171048937e-01, 7.18286544141962662868e-02, 1.26171219808761642112e-01,
       1.36370839120290507362e-02, 1.19844998467991074170e-02)
_RA = (-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e+01, -6.23753324503260060396e+01,
       -1.62396669462573470355e+02, -1.84605092906711035994e+02, -8.12874355063065934246e+01, -9.81432934416914548592e+00)
_SA = (1.0, 1.96512716674392571292e+01, 1.37657754143519042600e+02, 4.34565877475229228821e+02, 6.45387271733267880336e+02,
       4.29008140027567833386e+02, 1.08635005541779435134e+02, 6.57024977031928170135e+00, -6.04244152148580987438e-02)
_RB = (-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e+01, -1.60636384855821916062e+02,
       -6.37566443368389627722e+02, -1.02509513161107724954e+03, -4.83519191608651397019e+02)
_SB = (1.0, 3.03380607434824582924e+01, 3.25792512996573918826e+02, 1.53672958608443695994e+03, 3.19985821950859553908e+03,
       2.55305040643316442583e+03, 4.74528541206955367215e+02, -2.24409524465858183362e+01)


def erf64(x: np.ndarray) -> np.ndarray:
  """erf of a float64 array, < 1 ulp (fdlibm's algorithm); odd, so erf(-0) = -0; erf(+-inf) = +-1, nan stays nan.
  Each element is computed by its own interval's formula only (boolean indexing, not np.where over all four)."""
  x = np.asarray(x, dtype=np.float64)
  flat = x.reshape(-1)
  a = np.abs(flat)
  out = np.copysign(np.ones_like(flat), flat)   # |x| >= 6 (and +-inf): +-1
  out[np.isnan(flat)] = np.nan
  with np.errstate(all="ignore"):
    m = a < 0.84375
    xs = flat[m]; z = xs * xs
    out[m] = xs + xs * (_poly(z, _PP) / _poly(z, _QQ))   # exact for |x| < 2^-28 too (x * tiny underflows harmlessly)
    m = (a >= 0.84375) & (a < 1.25)
    s = a[m] - 1
    out[m] = np.copysign(_ERX + _poly(s, _PA) / _poly(s, _QA), flat[m])
    for lo, hi, (r, s_) in ((1.25, 1 / 0.35, (_RA, _SA)), (1 / 0.35, 6.0, (_RB, _SB))):
      m = (a >= lo) & (a < hi)
      am = a[m]
      w = 1 / (am * am)
      # |x| split as hi + lo with hi's low 32 bits cleared: exp(-hi^2) is exact enough, exp of the rest is small
      top = (am.view(np.uint64) & np.uint64(0xFFFFFFFF00000000)).view(np.float64)
      tail = np.exp(-top * top - 0.5625) * np.exp((top - am) * (top + am) + _poly(w, r) / _poly(w, s_)) / am
      out[m] = np.copysign(1 - tail, flat[m])
  return out.reshape(x.shape)
