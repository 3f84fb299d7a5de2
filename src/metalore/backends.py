"""Where independent tasks run: local worker processes (default) or a Ray cluster.

The grid sweep, multi-seed evaluation and multi-seed training split their work into tasks,
each a deterministic function of its inputs, and hand them to :func:`map_tasks` (or to a
:func:`open_backend` session), which returns the results **in task order**. The results are
therefore identical whichever backend ran them and with any number of workers.

Backends:

* ``"local"`` (default): with ``workers`` of 1 or ``None`` the tasks run one after another in
  this process; with more, in ``spawn`` worker processes of a
  :class:`~concurrent.futures.ProcessPoolExecutor`. This path never imports Ray.
* ``"ray"``: every task runs as a Ray task (one CPU each). With ``address=None`` a local
  cluster of ``workers`` CPUs (default: all cores) is started and shut down when the session
  ends; with an address (``"auto"``, ``"HOST:PORT"`` of a head node started with
  ``ray start --head``, or ``"ray://HOST:PORT"`` for Ray Client) the session connects to that
  cluster. If this process already called ``ray.init``, that session is used as it is.
  Ray is an optional extra: ``pip install 'metalore[ray]'``.

Task functions must be module-level functions (they are sent by reference). Worker
processes and Ray tasks report :func:`in_worker` as True, so tasks can avoid starting thread
pools of their own on cores the other workers already occupy. A remote cluster's nodes need
the same version of ``metalore`` (and of its dependencies) installed as the driver; a local
cluster's workers run this Python with this installation and share its Numba cache.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

__all__ = ["BACKENDS", "RAY_INSTALL_HINT", "Session", "check_backend", "in_worker", "map_tasks", "open_backend"]

BACKENDS = ("local", "ray")
RAY_INSTALL_HINT = "--backend ray needs Ray: pip install 'metalore[ray]'"
# "auto", HOST:PORT or ray://HOST:PORT: the cluster addresses of ray.init (no address: a new local cluster).
_ADDRESS = re.compile(r"auto|(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d+")

_IN_WORKER = False  # set in worker processes and Ray tasks


def in_worker() -> bool:
    """Whether this code runs inside a worker of a backend (a process-pool worker or a Ray task)."""
    return _IN_WORKER


def _mark_worker() -> None:
    global _IN_WORKER
    _IN_WORKER = True


def _call_in_worker(function: Callable[[Any], Any], task: Any) -> Any:
    """The entry point of a Ray task: mark the worker, then run the task."""
    _mark_worker()
    return function(task)


def check_backend(backend: str, workers: int | None = None, address: str | None = None) -> int | None:
    """Validate the backend options where they enter; return ``workers`` (``None`` stays ``None``).

    Raises:
        ValueError: an unknown backend, a worker count below 1, an address without the Ray
            backend or an address that is not ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not supported: choose one of {', '.join(BACKENDS)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers = {workers!r} is invalid: pass an integer >= 1 (or None for the default)")
    if address is not None:
        if backend != "ray":
            raise ValueError(f"a Ray address ({address!r}) needs the Ray backend: pass backend 'ray' (--backend ray)")
        if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
            raise ValueError(
                f"Ray address {address!r} is invalid: pass 'auto', HOST:PORT of a running head node"
                " or ray://HOST:PORT (or no address to start a local cluster)"
            )
    return workers


def _import_ray() -> Any:
    """Import Ray, or fail with the install command (STYLE.md §6, §9)."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(RAY_INSTALL_HINT) from exc
    return ray


class Session:
    """An open backend: ``slots`` tasks run at once; :meth:`map` runs tasks and keeps their order."""

    def __init__(self, backend: str, slots: int, ray: Any = None) -> None:
        self.backend, self.slots, self._ray = backend, slots, ray

    def map(self, function: Callable[[Any], Any], tasks: Sequence[Any]) -> list[Any]:
        """``[function(task) for task in tasks]``, run on this backend; results in task order."""
        tasks = list(tasks)
        if self._ray is not None:
            remote = self._ray.remote(num_cpus=1)(_call_in_worker)
            return list(self._ray.get([remote.remote(function, task) for task in tasks]))
        if self.slots <= 1 or len(tasks) <= 1:
            return [function(task) for task in tasks]
        # spawn, not fork: the parent may already run Numba's or torch's thread pool, which is not fork-safe
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(self.slots, len(tasks)), mp_context=context, initializer=_mark_worker) as pool:
            return list(pool.map(function, tasks))


@contextmanager
def _ray_session(workers: int | None, address: str | None) -> Iterator[Session]:
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        if address is None:  # "local": a new cluster, even if `ray start` runs one on this machine
            cpus = workers or os.cpu_count() or 1
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level="WARNING")
        else:
            try:
                ray.init(address=address, logging_level="WARNING")
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ValueError(
                    f"cannot connect to the Ray cluster at {address!r} ({exc}): start one with `ray start --head`"
                    " and pass its address (with token authentication, Ray's default, also set RAY_AUTH_MODE=token"
                    " and the cluster's token in ~/.ray/auth_token or RAY_AUTH_TOKEN), or omit the address to"
                    " start a local cluster"
                ) from None
        started = True
    try:
        slots = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        yield Session("ray", slots, ray)
    finally:
        if started:
            ray.shutdown()


@contextmanager
def open_backend(backend: str = "local", workers: int | None = None, address: str | None = None) -> Iterator[Session]:
    """Open a backend session for several :meth:`Session.map` calls (see the module docstring).

    Args:
        backend: ``"local"`` or ``"ray"``.
        workers: tasks at once. Local: processes (``None`` or 1: in this process). Ray: the
            CPUs of the local cluster started (default: all cores), or with an address the
            tasks to split the work into (default: the cluster's CPUs).
        address: a Ray cluster to connect to (Ray backend only); ``None`` starts a local one.
    """
    workers = check_backend(backend, workers, address)
    if backend == "ray":
        with _ray_session(workers, address) as session:
            yield session
    else:
        yield Session("local", workers or 1)


def map_tasks(
    function: Callable[[Any], Any],
    tasks: Sequence[Any],
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
) -> list[Any]:
    """``[function(task) for task in tasks]`` on ``backend``; results in task order (see :func:`open_backend`)."""
    with open_backend(backend, workers, address) as session:
        return session.map(function, tasks)
