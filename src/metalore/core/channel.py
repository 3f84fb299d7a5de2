"""Path-loss models (MODEL.md §3), chosen by name in the scenario's ``channel.model``.

Each model is one compiled scalar function ``(distance_2d_m, frequency_mhz, bs_height_m,
device_height_m, los) -> path loss in dB``; ``path_loss_db`` dispatches on the model id so
the step kernel stays a single compiled function. Okumura-Hata's SNR is also a power law of
the distance (``okumura_hata_power_law``, ``snr_power_law``): the form the step evaluates.
Distances below ``MIN_DISTANCE_M`` are clamped to it: both formulas diverge at zero distance
and are not meant for the near field.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

OKUMURA_HATA, UMI_38901 = 0, 1
MODEL_IDS = {"okumura_hata": OKUMURA_HATA, "umi_38901": UMI_38901}
MIN_DISTANCE_M = 1.0
_SPEED_OF_LIGHT_MPS = 299_792_458.0


@nb.njit(cache=True)
def okumura_hata_terms(frequency_mhz: float, bs_height_m: float, device_height_m: float) -> tuple[float, float]:
    """Okumura-Hata's loss at 1 km and its slope (dB per decade): ``L(d) = L_1km + slope * log10(d_km)``."""
    log_f, log_hb = math.log10(frequency_mhz), math.log10(bs_height_m)
    a_hm = (1.1 * log_f - 0.7) * device_height_m - (1.56 * log_f - 0.8)
    return 69.55 + 26.16 * log_f - 13.82 * log_hb - a_hm, 44.9 - 6.55 * log_hb


@nb.njit(cache=True)
def okumura_hata_db(distance_m: float, frequency_mhz: float, bs_height_m: float, device_height_m: float) -> float:
    """Okumura-Hata urban loss for small/medium cities (formally valid up to 1.5 GHz)."""
    loss_1km_db, slope_db = okumura_hata_terms(frequency_mhz, bs_height_m, device_height_m)
    return loss_1km_db + slope_db * math.log10(max(distance_m, MIN_DISTANCE_M) / 1000.0)


def okumura_hata_power_law(
    frequency_mhz: float, bs_height_m: float, device_height_m: float, tx_power_dbm: float, noise_w: float
) -> tuple[float, float]:
    """``(gain, exponent)`` of an Okumura-Hata link's SNR as a power of the squared distance.

    The loss is linear in ``log10 d`` (``okumura_hata_terms``), so
    ``SNR(d) = 10**((P_tx - L(d) - 30) / 10) / noise = gain * (d_km**2)**exponent`` with
    ``gain`` the SNR at 1 km and ``exponent = -slope / 20``. ``snr_power_law`` evaluates it
    with one ``pow`` per link instead of a ``sqrt``, a ``log10`` and a ``pow`` (the step's
    association was ~19% of its time). Equal to ``snr_linear(tx, okumura_hata_db(d), noise)``
    up to rounding (relative differences ~1e-15; tests/test_core_units.py).
    """
    loss_1km_db, slope_db = okumura_hata_terms(frequency_mhz, bs_height_m, device_height_m)
    return 10.0 ** ((tx_power_dbm - loss_1km_db - 30.0) / 10.0) / noise_w, -slope_db / 20.0


@nb.njit(cache=True, inline="always")
def snr_power_law(distance_sq_m2: float, gain: float, exponent: float) -> float:
    """Linear SNR ``gain * (d_km**2)**exponent`` at squared distance ``distance_sq_m2`` in m^2.

    See ``okumura_hata_power_law`` for ``gain`` and ``exponent``. Distances below
    ``MIN_DISTANCE_M`` are clamped to it, as in ``okumura_hata_db``.
    """
    return gain * (max(distance_sq_m2, MIN_DISTANCE_M * MIN_DISTANCE_M) * 1e-6) ** exponent


@nb.njit(cache=True)
def umi_38901_db(
    distance_m: float, frequency_mhz: float, bs_height_m: float, device_height_m: float, los: bool
) -> float:
    """3GPP TR 38.901 (Table 7.4.1-1) urban-micro street-canyon loss, LOS or NLOS, no shadowing."""
    d2 = max(distance_m, MIN_DISTANCE_M)
    d3 = math.sqrt(d2 * d2 + (bs_height_m - device_height_m) ** 2)
    fc_ghz = frequency_mhz / 1000.0
    breakpoint_m = 4.0 * (bs_height_m - 1.0) * (device_height_m - 1.0) * fc_ghz * 1e9 / _SPEED_OF_LIGHT_MPS
    if d2 <= breakpoint_m:
        pl_los = 32.4 + 21.0 * math.log10(d3) + 20.0 * math.log10(fc_ghz)
    else:
        pl_los = (
            32.4
            + 40.0 * math.log10(d3)
            + 20.0 * math.log10(fc_ghz)
            - 9.5 * math.log10(breakpoint_m**2 + (bs_height_m - device_height_m) ** 2)
        )
    if los:
        return pl_los
    pl_nlos = 35.3 * math.log10(d3) + 22.4 + 21.3 * math.log10(fc_ghz) - 0.3 * (device_height_m - 1.5)
    return max(pl_los, pl_nlos)


@nb.njit(cache=True)
def path_loss_db(
    model: int, distance_m: float, frequency_mhz: float, bs_height_m: float, device_height_m: float, los: bool
) -> float:
    """Path loss in dB of the model with id ``model`` (see ``MODEL_IDS``)."""
    if model == UMI_38901:
        return umi_38901_db(distance_m, frequency_mhz, bs_height_m, device_height_m, los)
    return okumura_hata_db(distance_m, frequency_mhz, bs_height_m, device_height_m)


@nb.njit(cache=True)
def snr_linear(tx_power_dbm: float, loss_db: float, noise_w: float) -> float:
    """Linear SNR of a link: received power ``tx_power_dbm - loss_db`` (dBm -> W) over ``noise_w``."""
    return 10.0 ** ((tx_power_dbm - loss_db - 30.0) / 10.0) / noise_w


def rate_bps(bandwidth_hz: np.ndarray | float, snr: np.ndarray | float) -> np.ndarray | float:
    """Shannon rate ``b * log2(1 + SNR)`` in bit/s (used by docs, rendering and tests)."""
    return bandwidth_hz * np.log2(1.0 + np.asarray(snr))
