"""Random-program fuzzing against torch (fuzz/programs.py draws the programs, fuzz/check.py compares).

Profiles (LAZYGRAD_FUZZ):
  ci (default)  derandomized: the same programs every run, CI_EXAMPLES per device (interp: small, it compiles
                every kernel through Triton's interpreter); a failure shrinks to a minimal program.
  long          random programs, LAZYGRAD_FUZZ_EXAMPLES per test on cpu (default 2000, interp an eighth);
                mismatches are recorded (LAZYGRAD_FUZZ_DIR, default <tmp>/lazygrad_fuzz: mismatches.log and a
                pickle per program) instead of failing, so one run collects all of them for triage.
The number of programs run is printed in the terminal summary (tests/conftest.py) and written per process
to LAZYGRAD_FUZZ_DIR/counts-*.json."""
import os
import pytest
from hypothesis import HealthCheck, given, settings
from fuzz.check import check, record_counts, record_mismatch
from fuzz.programs import programs

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")   # torch's warnings about the programs it runs (var of one element)
PROFILE = os.environ.get("LAZYGRAD_FUZZ", "ci")
CI_EXAMPLES = {"cpu": 400, "interp": 48}
LONG = int(os.environ.get("LAZYGRAD_FUZZ_EXAMPLES", "2000"))


def _settings(device: str):
  n = CI_EXAMPLES.get(device, 24) if PROFILE != "long" else (LONG if device == "cpu" else max(1, LONG // 8))
  return settings(max_examples=n, derandomize=PROFILE != "long", database=None, deadline=None, print_blob=True,
                  suppress_health_check=list(HealthCheck))


def _fuzz(device: str, max_ops: int):
  @_settings(device)
  @given(programs(max_ops=max_ops))
  def body(p):
    err = check(p, device)
    if err and PROFILE == "long": record_mismatch(p, device, err); return
    assert err is None, f"{err}\n{p!r}"
  try: body()
  finally: record_counts()


def test_fuzz_short_programs(device):
  """1-3 ops: every op alone and in pairs, on every input kind."""
  _fuzz(device, 3)


def test_fuzz_long_programs(device):
  """up to 8 ops: fusion across movement, reductions and broadcasting."""
  if device != "cpu" and PROFILE != "long": pytest.skip("interp runs the short programs only in CI (each kernel is interpreted)")
  _fuzz(device, 8)
