"""lazygrad.optim: SGD, Adam, AdamW with torch's defaults and formulas; lr_scheduler.
Every step() is one schedule: all parameter and state updates realized together."""
from lazygrad.optim.optimizer import Optimizer
from lazygrad.optim.sgd import SGD
from lazygrad.optim.adam import Adam, AdamW
from lazygrad.optim import lr_scheduler

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
