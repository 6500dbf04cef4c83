"""Moved to lazygrad/runtime/executor.py (the executor) and runtime/debug.py; kept for imports."""
from lazygrad.runtime.executor import realize_nodes, run_schedule

__all__ = ["realize_nodes", "run_schedule"]
