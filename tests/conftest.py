"""Every test runs once per device in LAZYGRAD_TEST_DEVICES (default: cpu and interp,
or cpu and cuda on a GPU machine). The device is the default device of the test
(LAZYGRAD_DEVICE), so tests need not pass device= anywhere."""
import os
# pytest -n 2 on 2 cores: one BLAS thread per worker, or BLAS threads fight over the cores
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"): os.environ.setdefault(_var, "1")
import sys
import warnings
import pytest

sys.path.insert(0, os.path.dirname(__file__))
warnings.filterwarnings("ignore", category=DeprecationWarning)


def _devices() -> list[str]:
  env = os.environ.get("LAZYGRAD_TEST_DEVICES")
  if env: return [d.strip() for d in env.split(",") if d.strip()]
  try:
    import torch
    gpu = torch.cuda.is_available()
  except ImportError: gpu = False
  return ["cpu", "cuda"] if gpu else ["cpu", "interp"]


DEVICES = _devices()
if "interp" in DEVICES:
  # Triton decides at import time whether tl.* library functions are interpreted
  os.environ["TRITON_INTERPRET"] = "1"


@pytest.fixture(autouse=True, params=DEVICES)
def device(request, monkeypatch):
  monkeypatch.setenv("LAZYGRAD_DEVICE", request.param)
  return request.param
