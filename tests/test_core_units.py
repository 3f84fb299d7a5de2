"""Unit checks of the core's small pieces: channel formulas, random streams, grid search, layout."""

from __future__ import annotations

import inspect
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numba as nb
import numpy as np
import pytest

import metalore
from metalore.config import make_scenario
from metalore.core import jit, kernels
from metalore.core.atomic import fetch_add
from metalore.core.channel import (
    OKUMURA_HATA,
    UMI_38901,
    okumura_hata_power_law,
    path_loss_db,
    snr_linear,
    snr_power_law,
)
from metalore.core.jit import install_cache_stamp
from metalore.core.rng import poisson_at_least_one, poisson_cdf_table, seed_streams, uniform
from metalore.core.simulator import BatchSimulator, nearest_rank_percentile
from metalore.core.state import Params, State, StepOutput


def test_okumura_hata_matches_the_formula_by_hand():
    # f = 3500 MHz, h_b = 40 m, h_m = 1.5 m, d = 50 m (worked out in MODEL.md §3's notation):
    log_f, log_hb = math.log10(3500), math.log10(40)
    a_hm = (1.1 * log_f - 0.7) * 1.5 - (1.56 * log_f - 0.8)
    expected = 69.55 + 26.16 * log_f - 13.82 * log_hb - a_hm + (44.9 - 6.55 * log_hb) * math.log10(0.05)
    assert expected == pytest.approx(95.29, abs=0.01)
    assert path_loss_db(OKUMURA_HATA, 50.0, 3500.0, 40.0, 1.5, False) == pytest.approx(expected, rel=1e-12)


def test_snr_uses_consistent_units():
    # 40 dBm - 95.29 dB = -55.29 dBm = 2.96e-9 W; over 1e-12 W noise -> SNR ~ 2958.
    assert snr_linear(40.0, 95.29, 1e-12) == pytest.approx(10 ** (-55.29 / 10) / 1000 / 1e-12, rel=1e-12)
    assert snr_linear(40.0, 95.29, 1e-12) == pytest.approx(2958, rel=1e-3)


@pytest.mark.parametrize(
    ("frequency_mhz", "bs_height_m", "device_height_m", "tx_power_dbm", "noise_w"),
    [(3500.0, 40.0, 1.5, 40.0, 1e-12), (900.0, 30.0, 10.0, 46.0, 1e-13), (1500.0, 200.0, 1.0, 20.0, 4e-12)],
)
def test_okumura_hata_power_law_equals_the_db_form(frequency_mhz, bs_height_m, device_height_m, tx_power_dbm, noise_w):
    # The kernel's form (one pow of the squared distance) against MODEL.md's dB formula,
    # from the clamped near field (0.5 m -> 1 m) to 20 km.
    gain, exponent = okumura_hata_power_law(frequency_mhz, bs_height_m, device_height_m, tx_power_dbm, noise_w)
    for distance in [0.0, 0.5, 1.0, 3.7, 50.0, 141.42, 999.9, 5_000.0, 20_000.0]:
        loss = path_loss_db(OKUMURA_HATA, distance, frequency_mhz, bs_height_m, device_height_m, False)
        expected = snr_linear(tx_power_dbm, loss, noise_w)
        assert snr_power_law(distance * distance, gain, exponent) == pytest.approx(expected, rel=1e-12, abs=0.0)
    # 50 m on the paper scenario's link: the hand-worked 95.29 dB -> SNR ~ 2958.
    gain, exponent = okumura_hata_power_law(3500.0, 40.0, 1.5, 40.0, 1e-12)
    assert snr_power_law(2500.0, gain, exponent) == pytest.approx(2958, rel=1e-3)


def test_umi_los_and_nlos():
    d3 = math.hypot(50.0, 40.0 - 1.5)
    breakpoint_m = 4 * 39.0 * 0.5 * 3.5e9 / 299_792_458.0  # ~910 m: 50 m is before it
    assert breakpoint_m > 50
    los = 32.4 + 21 * math.log10(d3) + 20 * math.log10(3.5)
    nlos = 35.3 * math.log10(d3) + 22.4 + 21.3 * math.log10(3.5)
    assert path_loss_db(UMI_38901, 50.0, 3500.0, 40.0, 1.5, True) == pytest.approx(los)
    assert path_loss_db(UMI_38901, 50.0, 3500.0, 40.0, 1.5, False) == pytest.approx(max(los, nlos))


def test_streams_are_reproducible_uniform_and_independent():
    words = np.zeros((3, 4), np.uint64)
    seed_streams(words, 42)
    again = np.zeros((3, 4), np.uint64)
    seed_streams(again, 42)
    assert np.array_equal(words, again)
    assert len({tuple(w) for w in words}) == 3
    draws = np.array([uniform(words[0]) for _ in range(20000)])
    assert draws.min() >= 0.0 and draws.max() < 1.0
    assert abs(draws.mean() - 0.5) < 0.01 and abs(draws.var() - 1 / 12) < 0.003


@pytest.mark.parametrize("mean", [0.3, 5.0, 70.0])
def test_poisson_sizes_have_the_right_distribution(mean):
    words = np.zeros((3, 4), np.uint64)
    seed_streams(words, 7)
    cdf = poisson_cdf_table(mean)
    samples = np.array([poisson_at_least_one(words[0], cdf) for _ in range(20000)])
    assert samples.min() >= 1
    # max(Poisson, 1): P(X = 1) absorbs P(X = 0); the mean shifts by exactly P(X = 0).
    expected_mean = mean + math.exp(-mean)
    assert abs(samples.mean() - expected_mean) < 4 * math.sqrt(mean / 20000) + 1e-3
    if mean > 1:
        assert abs(samples.var() - mean) < 0.1 * mean


def test_grid_nearest_sensor_equals_brute_force():
    cfg = {
        "area": {"width_m": 1000, "height_m": 1000},
        "bs": {"positions_m": [[500, 500]]},
        "sensor": {"count": 200, "placement": {"min_distance_m": 0, "max_distance_m": 700, "min_separation_m": 5}},
    }
    sim = BatchSimulator(make_scenario("paper", cfg), batch=2)
    sim.reset([0, 1], [3, 4])
    p, s = sim.params, sim.state
    assert kernels.BRUTE_FORCE_SENSORS < 200  # the grid path is the one under test
    rng = np.random.default_rng(0)
    points = np.vstack([rng.uniform(0, 1000, (300, 2)), s.pos_m[1, p.num_ues :][:20]])  # incl. exact hits
    for b in (0, 1):
        sensors = s.pos_m[b, p.num_ues :]
        for x, y in points:
            d2 = (sensors[:, 0] - x) ** 2 + (sensors[:, 1] - y) ** 2
            got = kernels.nearest_sensor(
                b, x, y, s.pos_m, p.num_ues, p.grid_cell_m, p.grid_nx, p.grid_ny, s.grid_start, s.grid_items
            )
            assert got == int(np.flatnonzero(d2 == d2.min())[0])


def test_kernel_signature_matches_the_state_layout():
    params = list(inspect.signature(kernels._step_block.py_func).parameters)
    expected = ["lo", "hi", "active", "action", *Params._fields, *State._fields, *StepOutput._fields]
    renamed = {"seed": "seeds"}  # the kernel's batch of seeds vs the State field name
    assert params == [renamed.get(name, name) for name in expected]
    init_params = list(inspect.signature(kernels._init_one.py_func).parameters)
    assert init_params == ["b", "seed", *Params._fields, *[renamed.get(n, n) for n in State._fields]]


def test_nearest_rank_percentile():
    hist = np.zeros(10, np.int64)
    hist[[0, 3, 7]] = [90, 5, 5]  # 100 values: 90 zeros, 5 threes, 5 sevens
    assert nearest_rank_percentile(hist, 0.95) == 3.0
    assert nearest_rank_percentile(hist, 0.96) == 7.0
    assert math.isnan(nearest_rank_percentile(np.zeros(4, np.int64), 0.95))


def test_prefetch_is_a_pure_hint_that_compiles_to_a_prefetch_instruction():
    import platform

    import numba as nb

    from metalore.core.prefetch import prefetch

    @nb.njit(_nrt=False)
    def sum_with_prefetch(a, c):
        total = 0.0
        for i in range(a.shape[0]):
            prefetch(a, (i, c, np.int32(0)))
            total += a[i, c, 1]
        return total

    a = np.arange(24, dtype=np.float64).reshape(4, 3, 2)
    assert sum_with_prefetch(a, 2) == a[:, 2, 1].sum()
    if platform.machine() in ("x86_64", "AMD64"):
        assert "prefetch" in sum_with_prefetch.inspect_asm(sum_with_prefetch.signatures[0])


@pytest.mark.parametrize("parallel", [False, True])
def test_step_age_sums_equal_the_sums_of_the_completed_jobs_ages(parallel):
    # read_step takes the step's mean AoRI/AoSI from done_age_sum; it must hold exactly the
    # sums of the done_n ages in done_aori/done_aosi, and the readout's means their quotient.
    sim = BatchSimulator(make_scenario("paper", {"episode": {"steps": 30}}), batch=8, parallel=parallel)
    ids = np.arange(8)
    sim.reset(ids, ids + 3)
    rng = np.random.default_rng(3)
    stepped = np.ones(8, bool)
    completions = 0
    for _ in range(30):
        sim.action[:] = rng.uniform(0.0, 1.0, sim.action.shape)
        sim.step()
        out = sim.out
        readout = sim.read_step(stepped)
        for b in range(8):
            n = int(out.done_n[b])
            completions += n
            sums = [int(out.done_aori[b, :n].sum()), int(out.done_aosi[b, :n].sum())]
            assert out.done_age_sum[b].tolist() == sums
            if n:
                assert readout.aori_mean[b] == sums[0] / n and readout.aosi_mean[b] == sums[1] / n
            else:
                assert np.isnan(readout.aori_mean[b]) and not readout.ue_done[b]
    assert completions > 100


def test_fetch_add_returns_the_old_value_and_loses_no_increment_across_threads():
    @nb.njit(parallel=True)
    def count(counters, n):
        for _ in nb.prange(n):
            fetch_add(counters, 1, 1)

    @nb.njit
    def take(counters, value):
        return fetch_add(counters, 2, value)

    counters = np.zeros(3, dtype=np.int64)
    count(counters, 200_000)  # both threads add to the same element
    assert counters.tolist() == [0, 200_000, 0]
    assert take(counters, np.int32(5)) == 0 and take(counters, 7) == 5
    assert counters.tolist() == [0, 200_000, 12]


_PROBE_RUN = """
import metalore.core  # installs the stamp before the probes compile
from metalore.core._probe_caller import caller
print(caller(), sum(caller.stats.cache_hits.values()))
"""


def test_editing_an_imported_core_file_recompiles_a_cached_caller(tmp_path):
    # numba keys a cached function on its own file; core.jit adds a digest of the core files it imports.
    package = Path(metalore.__file__).resolve().parent
    shutil.copytree(package, tmp_path / "metalore", ignore=shutil.ignore_patterns("__pycache__"))
    core = tmp_path / "metalore" / "core"
    (core / "_probe_caller.py").write_text(
        "import numba as nb\nfrom metalore.core._probe_callee import callee\n\n\n"
        "@nb.njit(cache=True)\ndef caller():\n    return callee() + 1\n"
    )
    callee = core / "_probe_callee.py"
    callee.write_text("import numba as nb\n\n\n@nb.njit(cache=True)\ndef callee():\n    return 1\n")

    def run() -> tuple[int, int]:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE_RUN],
            env={**os.environ, "PYTHONPATH": str(tmp_path), "NUMBA_CACHE_DIR": ""},
            capture_output=True,
            text=True,
            check=True,
        )
        value, hits = done.stdout.split()
        return int(value), int(hits)

    assert run() == (2, 0)  # compiled and cached
    assert run() == (2, 1)  # loaded from the cache
    (core / "_probe_unrelated.py").write_text("X = 1\n")  # a core file the caller does not import
    assert run() == (2, 1)
    callee.write_text(callee.read_text().replace("return 1", "return 41"))
    assert run() == (42, 0)  # the caller's file did not change, yet it is compiled anew
    assert run() == (42, 1)


def test_a_core_function_that_cannot_be_cached_warns_instead_of_failing(tmp_path):
    # numba reads its locator's _py_file to warn that a function cannot be cached (here: it reads
    # the thread count, a dynamic global); the core's locator must pass that through.
    package = Path(metalore.__file__).resolve().parent
    shutil.copytree(package, tmp_path / "metalore", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "metalore" / "core" / "_probe_uncachable.py").write_text(
        "import numba as nb\n\n\n@nb.njit(cache=True)\ndef threads():\n    return nb.get_num_threads()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", "import metalore.core\nfrom metalore.core._probe_uncachable import threads\n"
         "print(threads())"],
        env={**os.environ, "PYTHONPATH": str(tmp_path), "NUMBA_CACHE_DIR": ""},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 1
    assert 'Cannot cache compiled function "threads"' in done.stderr and "_probe_uncachable.py" in done.stderr


def test_the_cache_stamp_hook_is_installed_first():
    assert install_cache_stamp()
    classes = jit._CACHE_IMPL._locator_classes
    assert classes[0] is jit._CoreSourcesLocator and classes.count(jit._CoreSourcesLocator) == 1
    assert isinstance(kernels.step_envs._cache._impl.locator, jit._CoreSourcesLocator)
