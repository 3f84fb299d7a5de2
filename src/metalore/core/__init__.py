"""The simulation core: batched state, compiled kernels and the functional simulator API."""

from metalore.core.jit import install_cache_stamp

install_cache_stamp()  # before any core module compiles (see core.jit)

from metalore.core.simulator import BatchSimulator  # noqa: E402

__all__ = ["BatchSimulator"]
