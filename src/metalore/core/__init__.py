"""The simulation core: batched state, compiled kernels and the functional simulator API."""

from metalore.core.simulator import BatchSimulator

__all__ = ["BatchSimulator"]
