"""Learning-rate schedulers: StepLR, CosineAnnealingLR, OneCycleLR, with torch's (recursive)
formulas, so the lr sequences match torch's to the last bit. Call scheduler.step() after
optimizer.step(); the new lr reaches the kernels as a runtime value (no recompiles)."""
from __future__ import annotations
import math
from lazygrad.optim.optimizer import Optimizer


class LRScheduler:
  """The base of the schedulers, as torch.optim.lr_scheduler.LRScheduler: sets each group's
  lr at construction (step 0) and at every step(); `last_epoch` counts steps, `base_lrs`
  holds each group's initial_lr. A subclass defines get_lr() (the closed or recursive form
  torch uses, so values match torch's bit for bit)."""
  def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
    if not isinstance(optimizer, Optimizer): raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
    self.optimizer = optimizer
    if last_epoch == -1:
      for g in optimizer.param_groups: g.setdefault("initial_lr", g["lr"])
    else:
      for i, g in enumerate(optimizer.param_groups):
        if "initial_lr" not in g: raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when resuming a scheduler")
    self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
    self.last_epoch = last_epoch
    self._step_count = 0
    self._is_initial = True
    try: self.step()
    finally: self._is_initial = False

  def get_lr(self) -> list[float]:
    """The lr of each group for the step `last_epoch` (subclasses define it)."""
    raise NotImplementedError
  def get_last_lr(self) -> list[float]:
    """The lrs the last step() set, one per group."""
    return self._last_lr

  def step(self) -> None:
    """Advance one step (call it after optimizer.step()) and write the new lrs into the groups."""
    self._step_count += 1
    self.last_epoch += 1
    for g, lr in zip(self.optimizer.param_groups, self.get_lr()): g["lr"] = lr
    self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

  def state_dict(self) -> dict:
    """The scheduler's attributes except the optimizer, as torch."""
    return {k: v for k, v in self.__dict__.items() if k != "optimizer"}
  def load_state_dict(self, state_dict: dict) -> None:
    """Restore what state_dict() returned."""
    self.__dict__.update(state_dict)

  def _current(self) -> list[float]: return [g["lr"] for g in self.optimizer.param_groups]


class StepLR(LRScheduler):
  """lr = initial_lr * gamma ** (last_epoch // step_size), as torch.optim.lr_scheduler.StepLR (computed recursively, as torch)."""
  def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
    if not isinstance(step_size, int) or step_size <= 0: raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
    self.step_size, self.gamma = step_size, gamma
    super().__init__(optimizer, last_epoch)

  def get_lr(self) -> list[float]:
    """The lrs for last_epoch: the current lrs times gamma at every step_size-th epoch, else unchanged (torch's recursive form)."""
    if self.last_epoch == 0 or self.last_epoch % self.step_size != 0: return self._current()
    return [lr * self.gamma for lr in self._current()]


class CosineAnnealingLR(LRScheduler):
  """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2, as torch.optim.lr_scheduler.CosineAnnealingLR
  (computed recursively as torch; past T_max it rises again, as torch's does)."""
  def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
    if not isinstance(T_max, int) or T_max <= 0: raise ValueError(f"CosineAnnealingLR: T_max must be a positive int, got {T_max!r}")
    self.T_max, self.eta_min = T_max, eta_min
    super().__init__(optimizer, last_epoch)

  def get_lr(self) -> list[float]:
    """The lrs for last_epoch by torch's recursive cosine-annealing update of the current lrs (with torch's special cases)."""
    t, T, lo = self.last_epoch, self.T_max, self.eta_min
    if self._is_initial: return self._current()
    if self._step_count == 1 and t > 0:
      return [lo + (base - lo) * (1 + math.cos(t * math.pi / T)) / 2 for base in self.base_lrs]
    if (t - 1 - T) % (2 * T) == 0:
      return [lr + (base - lo) * (1 - math.cos(math.pi / T)) / 2 for base, lr in zip(self.base_lrs, self._current())]
    return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T)) * (lr - lo) + lo for lr in self._current()]


class OneCycleLR(LRScheduler):
  """The 1cycle policy, as torch.optim.lr_scheduler.OneCycleLR: warm up from max_lr/div_factor
  to max_lr over pct_start of total_steps (or epochs * steps_per_epoch), then anneal ('cos'
  or 'linear') to initial_lr/final_div_factor; three_phase as torch. With cycle_momentum,
  momentum (or Adam's beta1) cycles between max_momentum and base_momentum the opposite
  way. Stepping past total_steps raises, as torch."""
  def __init__(self, optimizer: Optimizer, max_lr, total_steps: int = None, epochs: int = None, steps_per_epoch: int = None,
               pct_start: float = 0.3, anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum=0.85,
               max_momentum=0.95, div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
               last_epoch: int = -1):
    if not isinstance(optimizer, Optimizer): raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
    if total_steps is not None:
      if not isinstance(total_steps, int) or total_steps <= 0: raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
      self.total_steps = total_steps
    elif epochs is not None and steps_per_epoch is not None:
      if not isinstance(epochs, int) or epochs <= 0: raise ValueError(f"Expected positive integer epochs, but got {epochs}")
      if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
        raise ValueError(f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}")
      self.total_steps = epochs * steps_per_epoch
    else: raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
    if not isinstance(pct_start, float) or not 0 <= pct_start <= 1: raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
    if anneal_strategy not in ("cos", "linear"): raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
    n = self.total_steps
    phase = lambda end, lr0, lr1, m0, m1: {"end_step": end, "start_lr": lr0, "end_lr": lr1, "start_momentum": m0, "end_momentum": m1}
    if three_phase:
      self._phases = [phase(float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                      phase(float(2 * pct_start * n) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                      phase(n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
    else:
      self._phases = [phase(float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                      phase(n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
    self._anneal = _anneal_cos if anneal_strategy == "cos" else _anneal_linear
    groups = optimizer.param_groups
    if last_epoch == -1:
      for g, mlr in zip(groups, _per_group("max_lr", groups, max_lr)):
        g["initial_lr"] = mlr / div_factor
        g["max_lr"] = mlr
        g["min_lr"] = g["initial_lr"] / final_div_factor
    self.cycle_momentum = cycle_momentum
    if cycle_momentum:
      if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ValueError("optimizer must support momentum or beta1 with `cycle_momentum` option enabled")
      self.use_beta1 = "betas" in optimizer.defaults
      if last_epoch == -1:
        for g, mm, bm in zip(groups, _per_group("max_momentum", groups, max_momentum), _per_group("base_momentum", groups, base_momentum)):
          if self.use_beta1: g["betas"] = (mm, *g["betas"][1:])
          else: g["momentum"] = mm
          g["max_momentum"], g["base_momentum"] = mm, bm
    super().__init__(optimizer, last_epoch)

  def get_lr(self) -> list[float]:
    """The lrs for last_epoch, annealed within the current phase; with cycle_momentum it also writes each group's
    momentum (or betas[0]), as torch. ValueError past total_steps."""
    t = self.last_epoch
    if t > self.total_steps: raise ValueError(f"Tried to step {t} times. The specified number of total steps is {self.total_steps}")
    lrs = []
    for g in self.optimizer.param_groups:
      start = 0.0
      for i, ph in enumerate(self._phases):
        end = ph["end_step"]
        if t <= end or i == len(self._phases) - 1:
          pct = (t - start) / (end - start)
          lr = self._anneal(g[ph["start_lr"]], g[ph["end_lr"]], pct)
          mom = self._anneal(g[ph["start_momentum"]], g[ph["end_momentum"]], pct) if self.cycle_momentum else None
          break
        start = ph["end_step"]
      lrs.append(lr)
      if self.cycle_momentum:
        if self.use_beta1: g["betas"] = (mom, *g["betas"][1:])
        else: g["momentum"] = mom
    return lrs


def _anneal_cos(start: float, end: float, pct: float) -> float:
  return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

def _anneal_linear(start: float, end: float, pct: float) -> float:
  return (end - start) * pct + start

def _per_group(name: str, groups: list, value) -> list:
  if isinstance(value, (list, tuple)):
    if len(value) != len(groups): raise ValueError(f"expected {len(groups)} values for {name}, got {len(value)}")
    return list(value)
  return [value] * len(groups)
