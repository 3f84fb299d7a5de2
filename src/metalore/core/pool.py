"""``ThreadPool``: one simulator's threaded steps and episode starts, on plain threads.

The lead (the thread that calls ``step``) and ``workers - 1`` helper threads run the compiled,
GIL-free functions of ``core.kernels`` ("the thread pool's side"): each takes blocks of the
batch from shared cursors, its own share first. A helper polls for the next task for a bounded
time after each one (back-to-back steps find it awake, as OpenMP's workers are), then sleeps on
a condition until the lead wakes it.

Why not numba's ``parallel=True``: its default layer on Linux, GNU OpenMP, cannot run in a
process forked from one that used it (the child is killed), and Python forks by default
(``multiprocessing``, Gymnasium's ``AsyncVectorEnv``). A pool's threads are started lazily and
again in a forked child. The parallel kernels also cost a minute of compilation on top of the
serial ones; these functions reuse the serial kernel's block stepper.

The helpers hold the simulator's arrays, never the simulator: when it is garbage-collected a
finalizer stops them, so their memory goes with it.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
from numba.core import config as numba_config

from metalore.core import kernels

# Polls (``pause``s, ~30-60 ns each on the project's machines) a helper waits for the next task
# before it sleeps, and the lead for the helpers before it checks on them from Python.
SPIN = 20_000
_pools: weakref.WeakSet[ThreadPool] = weakref.WeakSet()


def default_workers() -> int:
    """Threads a pool uses: numba's thread count (``NUMBA_NUM_THREADS``, default the CPUs), at most the blocks."""
    threads = int(numba_config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]  # (set at import from the env)
    return max(1, min(threads, kernels.PARALLEL_BLOCKS))


def _compiled(dispatcher: Any, fixed: tuple[Any, ...], rest: tuple[Any, ...]) -> Callable[..., Any]:
    """Compile ``dispatcher(*fixed, *rest)`` by calling it once; return the entry for exactly those types.

    The entry takes ``(*fixed, rest)`` (the star arguments packed, as the dispatcher packs them)
    and skips the dispatcher's typing of the ~90 arguments on every call (see
    ``BatchSimulator._first_step_owned``). The call must be safe to run: here the pool's
    functions with a spin of zero, which return at once.
    """
    dispatcher(*fixed, *rest)
    key = tuple(dispatcher.typeof_pyval(a) for a in (*fixed, rest))
    return dispatcher.overloads[key].entry_point


class ThreadPool:
    """Runs the threaded steps and episode starts of one batch of arrays on ``workers`` threads.

    Args:
        step_args: the Params, State and StepOutput fields, as ``kernels.step_envs`` takes them.
        active_all, active_mask: the (B,) bool buffers of "every environment" and of a selection.
        action: the (B, M, 2) action buffer.
        workers: threads in all, the calling one included (>= 2).
    """

    def __init__(
        self,
        step_args: tuple[Any, ...],
        active_all: np.ndarray,
        active_mask: np.ndarray,
        action: np.ndarray,
        workers: int,
    ) -> None:
        if workers < 2:
            raise ValueError(f"a thread pool needs >= 2 workers, got {workers}")
        batch = action.shape[0]
        self.workers = workers
        self.ctrl = np.zeros(kernels.CTRL_SIZE, dtype=np.int64)
        self.cursors = np.zeros(workers, dtype=np.int64)
        self.env_ids = np.zeros(batch, dtype=np.int64)  # an episode start's environments and seeds
        self.seeds = np.zeros(batch, dtype=np.int64)
        self.failed = np.zeros(batch, dtype=np.bool_)
        self._task_args = (
            self.ctrl, self.cursors, self.env_ids, self.seeds, self.failed, active_all, active_mask, action, *step_args,
        )  # fmt: skip
        self._lead: Callable[..., Any] | None = None
        self._threads: list[threading.Thread] = []
        self._cond = threading.Condition()
        self._in_flight = False  # a task was published and not seen done (an interrupted lead)
        self._stopped = False
        _pools.add(self)

    # ----------------------------------------------------------------- tasks
    def step(self, masked: bool) -> None:
        """Step the batch's active environments (``active_mask`` if ``masked``, else ``active_all``)."""
        self._run(kernels.TASK_STEP, masked, 0)

    def init(self, env_ids: np.ndarray, seeds: np.ndarray) -> int:
        """Start episodes of the distinct ``env_ids`` from ``seeds``; the first whose placement failed, or -1."""
        count = len(env_ids)
        self.env_ids[:count] = env_ids
        self.seeds[:count] = seeds
        self._run(kernels.TASK_INIT, False, count)
        failed = np.flatnonzero(self.failed[:count])
        return int(env_ids[failed[0]]) if failed.size else -1

    def _run(self, task: int, masked: bool, count: int) -> None:
        if not self._threads:
            if self._stopped:
                raise RuntimeError("this thread pool was stopped (its simulator is gone): create a new simulator")
            self._start()
        if self._in_flight:  # the last task's lead was interrupted: let the helpers finish it first
            self._wait()
        assert self._lead is not None
        if kernels.publish(self.ctrl, self.cursors, self.workers, task, int(masked), count):
            with self._cond:
                self._cond.notify_all()
        self._in_flight = True
        if not self._lead(self.workers, SPIN, *self._task_args[:8], self._task_args[8:]):
            self._wait()
        self._in_flight = False

    def _wait(self) -> None:
        """The helpers are late (the OS has not run them yet): wait for them without spinning a core."""
        while not kernels.wait_done(self.ctrl, self.workers - 1, SPIN):
            dead = [t.name for t in self._threads if not t.is_alive()]
            if dead:
                raise RuntimeError(f"metalore thread pool: helper threads {dead} died; create a new simulator")
            time.sleep(50e-6)
        self._in_flight = False

    # ----------------------------------------------------------------- threads
    def _start(self) -> None:
        """Compile the pool's functions on this thread (errors surface here), then start the helpers."""
        ctrl = self.ctrl
        ctrl[:] = 0
        head, rest = self._task_args[:8], self._task_args[8:]
        # A spin of zero returns at once: the helper sees no new generation, the lead has no task
        # (TASK_INIT with count 0 starts no episode) and does not wait.
        ctrl[kernels.CTRL_TASK] = kernels.TASK_INIT
        _compiled(kernels.helper_loop, (1, self.workers, 0, 0, *head), rest)
        self._lead = _compiled(kernels.lead_task, (self.workers, 0, *head), rest)
        ctrl[:] = 0
        self._threads = [
            threading.Thread(
                target=_helper, args=(w, self.workers, self._task_args, self._cond), name=f"metalore-pool-{w}",
                daemon=True,
            )
            for w in range(1, self.workers)
        ]  # fmt: skip
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Let the helpers exit (they drop their references to the arrays); the pool cannot run afterwards."""
        self._stopped = True
        if not self._threads:
            return
        self.ctrl[kernels.CTRL_STOP] = 1
        kernels.publish(self.ctrl, self.cursors, self.workers, kernels.TASK_STEP, 0, 0)
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():  # (a finalizer may run on a helper)
                thread.join(timeout=1.0)
        self._threads = []

    def _after_fork_in_child(self) -> None:
        """The child has none of the parent's threads (and perhaps a held lock): start afresh when used."""
        self._threads = []
        self._cond = threading.Condition()
        self._in_flight = False
        self.ctrl[:] = 0


def _helper(w: int, workers: int, task_args: tuple[Any, ...], cond: threading.Condition) -> None:
    """Helper thread ``w``: run tasks while they come, sleep when idle, exit when the pool stops."""
    ctrl = task_args[0]
    head, rest = task_args[:8], task_args[8:]
    run = _compiled(kernels.helper_loop, (w, workers, 0, 0, *head), rest)  # compiled by the lead already
    last = 0
    while True:
        last = run(w, workers, last, SPIN, *head, rest)
        if last < 0:
            return
        with cond:
            kernels.atomic_add(ctrl, kernels.CTRL_SLEEPING, 1)  # a full barrier before reading the generation
            while ctrl[kernels.CTRL_GEN] == last:
                cond.wait()
            kernels.atomic_add(ctrl, kernels.CTRL_SLEEPING, -1)
        if ctrl[kernels.CTRL_STOP]:
            return
        # The new generation's task: helper_loop sees it at once (its generation differs from last).


def _after_fork_in_child() -> None:
    for pool in list(_pools):
        pool._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
