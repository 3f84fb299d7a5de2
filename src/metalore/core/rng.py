"""Per-environment random streams that live inside the batched state.

Every environment of a batch owns its own xoshiro256** streams (state words in the array
``rng[b, stream, 0:4]``), so a vector of environments reproduces exactly the episodes of
single environments seeded alike, and the draws never depend on the agent's actions
(common random numbers across policies). Poisson sizes are drawn by exact inversion of a
cumulative table built once per scenario.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from metalore.core.jit import STEP_PATH

# Streams of one environment: traffic draws, mobility draws, initial placement.
TRAFFIC, MOBILITY, PLACEMENT = 0, 1, 2
NUM_STREAMS = 3

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@nb.njit(cache=True, inline="always")
def _rotl(x: np.uint64, k: int) -> np.uint64:
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@nb.njit(cache=True)
def splitmix64(x: np.uint64) -> np.uint64:
    """Return the splitmix64 output for input ``x`` (the seed expander of xoshiro)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@nb.njit(cache=True)
def seed_streams(words: np.ndarray, seed: np.int64) -> None:
    """Fill ``words`` (shape ``(NUM_STREAMS, 4)``) with independent streams derived from ``seed``."""
    x = np.uint64(seed)
    for stream in range(words.shape[0]):
        x = x ^ (np.uint64(stream + 1) * _GOLDEN)
        for i in range(4):
            x = splitmix64(x)
            words[stream, i] = x


@nb.njit(cache=True)
def next_seed(seed: np.int64) -> np.int64:
    """Return the seed of the next episode of an environment reset without a seed."""
    return np.int64(splitmix64(np.uint64(seed) ^ _MIX2) >> np.uint64(1))


@nb.njit(**STEP_PATH)
def next_u64_at(rng: np.ndarray, b: int, stream: int) -> np.uint64:
    """Advance stream ``rng[b, stream]`` (xoshiro256**, 4 state words) and return 64 random bits.

    Indexes the batch array directly: a view per draw would cost a reference-count update
    on the shared array, which threads stepping other environments contend for.
    """
    s0, s1, s2, s3 = rng[b, stream, 0], rng[b, stream, 1], rng[b, stream, 2], rng[b, stream, 3]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    rng[b, stream, 0], rng[b, stream, 1], rng[b, stream, 2], rng[b, stream, 3] = s0, s1, s2, s3
    return result


@nb.njit(**STEP_PATH)
def uniform_at(rng: np.ndarray, b: int, stream: int) -> float:
    """Return a float uniform on [0, 1) from stream ``rng[b, stream]``."""
    return float(next_u64_at(rng, b, stream) >> np.uint64(11)) * _TO_UNIT


@nb.njit(**STEP_PATH)
def poisson_at_least_one_at(rng: np.ndarray, b: int, stream: int, cdf: np.ndarray) -> int:
    """Return ``max(Poisson(λ), 1)`` by inverting the cumulative table ``cdf`` of Poisson(λ)."""
    k = np.searchsorted(cdf, uniform_at(rng, b, stream), side="right")
    if k >= cdf.shape[0]:  # u beyond the table's last point: probability < 1e-15
        k = cdf.shape[0] - 1
    return max(int(k), 1)


@nb.njit(**STEP_PATH)
def poisson_guided_at(rng: np.ndarray, b: int, stream: int, cdf: np.ndarray, guide: np.ndarray) -> int:
    """``poisson_at_least_one_at`` in expected O(1): start at the guide table's entry, then step.

    ``guide[j]`` is ``searchsorted(cdf, j / G, "right")`` for ``G = len(guide)``; the answer for
    ``u`` lies at or just after ``guide[int(u * G)]``. Stepping in both directions until
    ``cdf[k - 1] <= u < cdf[k]`` makes the result exactly ``searchsorted``'s whatever the
    rounding of ``u * G`` (the reference stepper keeps ``searchsorted`` and checks this).
    """
    u = uniform_at(rng, b, stream)
    n = cdf.shape[0]
    k = guide[min(int(u * guide.shape[0]), guide.shape[0] - 1)]
    while k > 0 and cdf[k - 1] > u:
        k -= 1
    while k < n and cdf[k] <= u:
        k += 1
    if k >= n:  # u beyond the table's last point: probability < 1e-15
        k = n - 1
    return max(k, 1)


@nb.njit(cache=True)
def uniform(s: np.ndarray) -> float:
    """Return a float uniform on [0, 1) from one stream's 4 state words ``s``."""
    return uniform_at(s.reshape((1, 1, 4)), 0, 0)


@nb.njit(cache=True)
def poisson_at_least_one(s: np.ndarray, cdf: np.ndarray) -> int:
    """``poisson_at_least_one_at`` for one stream's 4 state words ``s``."""
    return poisson_at_least_one_at(s.reshape((1, 1, 4)), 0, 0, cdf)


def poisson_guide_table(cdf: np.ndarray) -> np.ndarray:
    """Guide table of ``cdf`` for ``poisson_guided_at``: one entry per table point, int64."""
    return np.searchsorted(cdf, np.arange(len(cdf)) / len(cdf), side="right").astype(np.int64)


def poisson_cdf_table(mean: float) -> np.ndarray:
    """Cumulative probabilities ``P(X <= k)`` of Poisson(``mean``) until the tail is below 1e-15."""
    if not mean > 0:
        raise ValueError(f"Poisson mean must be positive, got {mean}")
    k_max = int(mean + 12.0 * math.sqrt(mean) + 30.0)
    k = np.arange(k_max + 1, dtype=np.float64)
    log_pmf = k * math.log(mean) - mean - np.array([math.lgamma(v + 1.0) for v in k])
    cdf = np.cumsum(np.exp(log_pmf))
    return np.minimum(cdf, 1.0)
