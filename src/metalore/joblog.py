"""The per-job lifecycle table (``env.unwrapped.job_log()``) and its CSV/Parquet export."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from metalore.core.state import (
    DROPPED_MEC,
    DROPPED_UPLINK,
    LOG_COMPUTE,
    LOG_DATA,
    LOG_DEVICE,
    LOG_DROPPED,
    LOG_KIND,
    LOG_SENSOR,
    LOG_SENSOR_UPDATE_T,
    LOG_T_DONE,
    LOG_T_GEN,
    LOG_T_START,
    LOG_T_TX,
    UE,
)
from metalore.io import atomic_path

if TYPE_CHECKING:
    import pandas as pd

    from metalore.core.simulator import BatchSimulator

JOB_LOG_COLUMNS = (
    "job_id",
    "kind",
    "device_id",
    "sensor_id",
    "data_mbit",
    "compute_units",
    "t_generated",
    "t_tx_done",
    "t_proc_start",
    "t_proc_done",
    "sensor_update_t",
    "aori",
    "aosi",
    "dropped",
    "drop_reason",
)


def job_log_frame(sim: BatchSimulator, b: int) -> pd.DataFrame:
    """One row per job of environment ``b``'s episode (oldest rows beyond ``log.max_jobs`` dropped).

    Times are step indices (nullable integers: missing while the job has not reached that
    stage). ``device_id`` is the index within the job's class (UE k or sensor n); ``sensor_id``
    is the sensor whose twin data the job needs (UEs) or carries (sensors). ``aori``/``aosi``
    are set for completed UE jobs. ``df.attrs["rows_dropped"]`` counts log rows overwritten.
    """
    import pandas as pd

    jid, rec, overwritten = sim.job_log_records(b)
    num_ues = sim.params.num_ues
    is_ue = rec[:, LOG_KIND] == UE

    def times(field: int) -> pd.Series:
        values = rec[:, field].astype(np.int64)
        return pd.Series(pd.array(np.where(values >= 0, values, 0), dtype="Int64")).mask(values < 0)

    t_gen = times(LOG_T_GEN)
    t_done = times(LOG_T_DONE)
    update = times(LOG_SENSOR_UPDATE_T)
    completed_ue = pd.Series(is_ue) & t_done.notna()
    reason = np.full(len(jid), "", dtype=object)
    reason[rec[:, LOG_DROPPED] == DROPPED_UPLINK] = "uplink_queue_full"
    reason[rec[:, LOG_DROPPED] == DROPPED_MEC] = "mec_queue_full"
    frame = pd.DataFrame(
        {
            "job_id": jid.astype(np.int64),
            "kind": np.where(is_ue, "ue", "sensor"),
            "device_id": np.where(is_ue, rec[:, LOG_DEVICE], rec[:, LOG_DEVICE] - num_ues).astype(np.int64),
            "sensor_id": rec[:, LOG_SENSOR].astype(np.int64),
            "data_mbit": rec[:, LOG_DATA].astype(np.int64),
            "compute_units": rec[:, LOG_COMPUTE].astype(np.int64),
            "t_generated": t_gen,
            "t_tx_done": times(LOG_T_TX),
            "t_proc_start": times(LOG_T_START),
            "t_proc_done": t_done,
            "sensor_update_t": update,
            "aori": (t_done - t_gen).where(completed_ue),
            "aosi": (t_gen - update).abs().where(completed_ue),
            "dropped": rec[:, LOG_DROPPED] > 0,
            "drop_reason": reason,
        }
    )
    frame.attrs["rows_dropped"] = overwritten
    return frame


def write_job_log(frame: Any, path: str | Path) -> Path:
    """Write a job log to ``.csv`` or ``.parquet`` (by suffix), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"job log path {str(path)!r} must end in .csv or .parquet")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401  (pandas needs it for Parquet)
        except ImportError as exc:
            raise ImportError('writing Parquet needs pyarrow: pip install "metalore[parquet]"') from exc
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    return path
