"""Small scenarios shared by the hand-computable tests."""

from __future__ import annotations

# Every job of this size is exactly 1 Mbit and 1 compute unit: P(Poisson(1e-9) <= 1) rounds to 1.
TINY = 1e-9

# One BS in the middle of 100 m x 100 m, one static UE 10 m north and one sensor 10 m south of it,
# unit-size jobs, a request every step and a sensor update every step: hand-computable scenarios
# start here and set the episode length and the BS's bandwidth/compute.
PINNED_PAIR: dict = {
    "area": {"width_m": 100.0, "height_m": 100.0},
    "bs": {"positions_m": [[50.0, 50.0]]},
    "ue": {
        "count": 1,
        "positions_m": [[50.0, 60.0]],
        "mobility": "static",
        "request_probability": 1.0,
        "data_mbit_mean": TINY,
        "compute_units_mean": TINY,
    },
    "sensor": {
        "count": 1,
        "positions_m": [[50.0, 40.0]],
        "period_steps": 1,
        "data_mbit_mean": TINY,
        "compute_units_mean": TINY,
    },
}
