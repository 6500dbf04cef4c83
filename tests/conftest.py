"""Every test runs once per device in LAZYGRAD_TEST_DEVICES (default: cpu and interp,
or cpu and cuda on a GPU machine). The device is the default device of the test
(LAZYGRAD_DEVICE), so tests need not pass device= anywhere."""
import os
# pytest -n 2 on 2 cores: one BLAS thread per worker, or BLAS threads fight over the cores
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"): os.environ.setdefault(_var, "1")
import sys
import time
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


def pytest_configure(config):
  # names this run's folder of fuzz counts (tests/fuzz/check.py); set in the controller, inherited by xdist workers
  if not hasattr(config, "workerinput"): os.environ.setdefault("LAZYGRAD_FUZZ_RUN", f"{os.getpid()}-{time.time_ns()}")


def pytest_terminal_summary(terminalreporter):
  """The number of programs the fuzzer ran (tests/fuzz), when it ran."""
  try:
    from fuzz.check import summary
    line = summary()
  except Exception as e: line = f"fuzz: no summary ({type(e).__name__}: {e})"
  if line: terminalreporter.write_line(line)


@pytest.fixture(autouse=True, params=DEVICES)
def device(request, monkeypatch):
  monkeypatch.setenv("LAZYGRAD_DEVICE", request.param)
  return request.param
