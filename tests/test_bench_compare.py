"""benchmarks/compare_other.py measures another simulator in a separate interpreter (here: CartPole)."""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_compare(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / "compare_other.py"), *args], capture_output=True, text=True, check=False
    )


def test_measures_steps_per_second_and_step_time_windows_of_another_simulator():
    proc = run_compare("--module", "gymnasium", "--id", "CartPole-v1", "--seconds", "0.05", "--long-steps", "2500")
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["id"] == "CartPole-v1" and row["steps_per_s"] > 0 and len(row["steps_per_s_repeats"]) == 3
    assert len(row["window_ms"]) == 3 and all(w > 0 for w in row["window_ms"])  # 1,000 + 1,000 + 500 steps
    # a fixed action topples the pole within a few dozen steps: the episode restarts are recorded
    assert row["resets_at"] and row["resets_at"][0] < 100


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--make-kwargs", "{not json"), "is not JSON"),
        (("--make-kwargs", "[1]"), "is not a JSON object"),
        (("--long-steps", "10"), "shorter than one 1000-step window"),
    ],
)
def test_bad_arguments_are_named(args, message):
    proc = run_compare("--module", "gymnasium", "--id", "CartPole-v1", *args)
    assert proc.returncode == 2 and message in proc.stderr


def import_script(name: str):
    """A benchmarks/ script as a module (they import each other by name, so the folder joins the path)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def import_bench():
    return import_script("bench")


def test_bench_table_shows_the_comparison_rows():
    bench = import_bench()
    rows = [
        {"module": "m", "id": "x-v0", "steps_per_s": 500.0, "long_steps": 2000, "window_steps": 1000,
         "window_ms": [2.0, 4.0], "resets_at": [2000]},
        {"module": "m", "id": "y-v0", "error": "Traceback ...\nNameNotFound: Environment y doesn't exist."},
    ]  # fmt: skip
    lines = bench.other_rows(rows, own_single_rate=50_000.0)
    text = "\n".join(lines)
    assert "m:x-v0  500.0 steps/s  (MetaLore paper single env: 100.0x faster)" in text
    assert "last/first 2.00" in text
    assert "m:y-v0  error: NameNotFound: Environment y doesn't exist." in text
    assert bench.other_rows(None, 1.0) == []


@pytest.mark.parametrize("lines", [1, 2, 37, 4096])
def test_memory_latency_probe_chases_every_line_once_per_cycle(lines):
    # The machine-speed probe times dependent loads along this cycle: it must visit every line
    # (else a smaller working set is timed) and use one slot per 64-byte line.
    bench = import_bench()
    nxt = bench.chase_cycle(lines, seed=lines)
    assert nxt.size == lines * 8
    seen, i = [], 0
    for _ in range(lines):
        seen.append(i)
        i = int(nxt[i])
    assert i == 0 and sorted(seen) == list(range(0, lines * 8, 8))
    assert not nxt.reshape(lines, 8)[:, 1:].any()  # the other slots of each line are never read


def test_tlb_probe_chases_one_line_per_page():
    # The TLB probe's spread layout: the same cycle, one used line per 4 KiB page (+ a line).
    bench = import_bench()
    stride = bench.TLB_PROBE_STRIDE_BYTES // 8
    nxt = bench.chase_cycle(64, seed=3, stride_bytes=bench.TLB_PROBE_STRIDE_BYTES)
    seen, i = [], 0
    for _ in range(64):
        seen.append(i)
        i = int(nxt[i])
    assert i == 0 and sorted(seen) == list(range(0, 64 * stride, stride))
    assert len({slot * 8 // 4096 for slot in seen}) == 64  # every line on its own page
    with pytest.raises(ValueError, match="stride_bytes=12"):
        bench.chase_cycle(4, stride_bytes=12)


def test_machine_speed_lines_show_both_ends_of_the_run():
    bench = import_bench()
    start = {"python_loop_10M_s": 0.5, "load_latency_ns": {"256": 4.0, "8192": 20.0}}
    end = {"python_loop_10M_s": 1.5, "load_latency_ns": {"256": 4.5, "8192": 90.0}}
    lines = bench.speed_lines({"start": start, "end": end})
    assert lines == [
        "machine speed at the start: 10M-iteration Python loop 0.50 s;"
        " dependent-load latency (256 KiB, 8 MiB) 4.0 / 20.0 ns",
        "machine speed at the end: 10M-iteration Python loop 1.50 s;"
        " dependent-load latency (256 KiB, 8 MiB) 4.5 / 90.0 ns",
    ]
    assert bench.speed_lines(None) == []  # reports written before the probe existed
    start["page_spread_latency_ns"] = {"contiguous": 7.7, "one_per_page": 21.1}
    assert bench.speed_lines({"start": start, "end": end})[0].endswith(
        "4.0 / 20.0 ns; 4,096 lines one per 4 KiB page 21.1 ns, contiguous 7.7 ns"
    )


def test_steal_share_and_notes_of_the_report():
    bench = import_bench()
    before = [100, 0, 50, 800, 0, 0, 0, 50]  # user nice system idle iowait irq softirq steal
    after = [300, 0, 100, 1400, 0, 0, 0, 200]  # +200 +50 +600 +150 of 1,000 ticks
    assert bench.steal_percent(before, after) == pytest.approx(15.0)
    assert bench.steal_percent(before, before) is None  # no time passed
    assert bench.steal_percent(None, after) is None
    assert bench.steal_note({"cpu_steal_percent": 15.0}) == "; CPU time stolen by the hypervisor during the run 15.0%"
    assert bench.steal_note({}) == ""  # reports from before the field, or off Linux
    assert bench.probe_note({"core_probe_ms": [8.25, 5.75, 9.0]}) == "  (core probe 5.8-9.0 ms)"
    assert bench.probe_note({"best": 1.0}) == ""
    ticks = bench.cpu_ticks()
    if Path("/proc/stat").exists():
        assert ticks is not None and len(ticks) == 8 and all(t >= 0 for t in ticks)


def test_timed_rate_records_a_core_probe_before_every_repeat():
    bench = import_bench()
    calls = []

    def chunk() -> int:
        calls.append(1)
        return 10

    rate = bench.timed_rate(chunk, min_seconds=0.0, min_steps=30, repeats=4)
    assert len(calls) == 12 and len(rate["repeats"]) == 4  # 3 chunks reach 30 steps, per repeat
    assert len(rate["core_probe_ms"]) == 4 and all(ms > 0 for ms in rate["core_probe_ms"])


def test_swings_summary_splits_samples_at_the_core_probe_quarters():
    swings = import_script("swings")
    probe = [5.0, 9.0, 6.0, 8.0, 5.5, 9.5, 6.5, 8.5]
    us = [3.0, 4.2, 3.1, 4.0, 2.9, 4.4, 3.2, 4.1]  # slower kernel where the probe was slow
    samples = [
        {"t_s": i * 0.1, "core_probe_ms": p, "load_ns": 180.0 + i, "kernel_us": {"64": u, "1024": 2 * u}}
        for i, (p, u) in enumerate(zip(probe, us, strict=True))
    ]
    summary = swings.summarize(samples, [64, 1024])
    s64 = summary["64"]
    assert s64["fastest_core_quarter_us"] == pytest.approx(2.95)  # the samples of probes 5.0 and 5.5
    assert s64["slowest_core_quarter_us"] == pytest.approx(4.3)  # 9.0 and 9.5
    assert s64["r_core_probe"] > 0.95 and summary["1024"]["median_us"] == pytest.approx(2 * s64["median_us"])
    assert summary["core_probe_ms"] == {"min": 5.0, "median": 7.25, "max": 9.5}
    assert swings.quartile_medians([1.0, 2.0], [10.0, 20.0]) == (10.0, 20.0)  # quarters of one sample each
    assert math.isnan(swings.correlation([1.0, 1.0], [2.0, 3.0]))  # a constant series has no correlation
    lines = swings.bin_lines(samples, [64, 1024], width_s=0.4)
    assert len(lines) == 3 and lines[1].split()[:2] == ["0", "7.0"]  # t = 0, median probe of 5, 9, 6, 8


def test_swings_script_samples_probes_and_kernel_bursts(tmp_path):
    out = tmp_path / "swings.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "swings.py"), "--seconds", "0.5", "--batches", "2", "5",
         "--json", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["kernel"] == "serial" and len(report["samples"]) >= 1
    for sample in report["samples"]:
        assert sample["core_probe_ms"] > 0 and sample["load_ns"] > 0
        assert sorted(sample["kernel_us"]) == ["2", "5"] and all(us > 0 for us in sample["kernel_us"].values())
    assert "5 envs:" in proc.stdout and "r with the core probe" in proc.stdout
    refusals = ((["--batches", "0"], "0 is not a positive int"), (["--seconds", "x"], "x is not a positive float"))
    for bad, message in refusals:
        refused = subprocess.run(
            [sys.executable, str(BENCHMARKS / "swings.py"), *bad], capture_output=True, text=True, check=False
        )
        assert refused.returncode == 2 and message in refused.stderr


def test_scaling_slopes_are_taken_per_round_of_back_to_back_timings(monkeypatch):
    bench = import_bench()
    timed: list[str] = []
    # A machine that runs every other round at half speed: per round, the sizes see one speed.
    per_step_s = {"small": 1e-5, "mid": 3e-5, "big": 1e-4}  # linear in the device count (200, 600, 2,000)

    def fake_timed_rate(chunk, min_seconds, min_steps, repeats):
        timed.append(chunk)
        slow = 2.0 if (len(timed) - 1) // 3 % 2 else 1.0
        return {"best": 1.0 / (per_step_s[chunk] * slow)}

    monkeypatch.setattr(bench, "timed_rate", fake_timed_rate)
    group = [(200, {"core": "small", "min_steps": 1}), (600, {"core": "mid", "min_steps": 1})]
    group.append((2000, {"core": "big", "min_steps": 1}))
    (slopes,) = bench.round_slopes([group], window_s=0.1, rounds=4)
    assert slopes == [pytest.approx(1.0)] * 4  # each round's sizes shared a speed: exactly linear
    assert timed == ["small", "mid", "big", "big", "mid", "small"] * 2  # order reversed every other round
    scaling = {"device_slope_core": 1.2, "device_slope_core_median": 0.95, "device_slope_core_rounds": [0.9, 0.95, 1.0]}
    assert bench.scaling_slope(scaling, "device") == 0.95
    assert bench.scaling_slope({"bs_slope_core": 0.5}, "bs") == 0.5  # reports from before the rounds
    assert bench.round_lines(scaling, "device", "vs devices") == [
        "  vs devices: log-log slope core 0.95, the median over 3 rounds of the sizes timed back to back"
        " (range 0.90-1.00; the check's value)"
    ]
    assert bench.round_lines({"bs_slope_core": 0.5}, "bs", "vs BSs") == []


def test_committed_results_render_with_this_version_of_the_table():
    bench = import_bench()
    report = json.loads((BENCHMARKS / "results.json").read_text())
    table = bench.render_table(report)
    assert table.splitlines()[0].startswith("MetaLore benchmark (")
    assert [c["name"] for c in report["checks"]] == [c["name"] for c in bench.checks_from(report["results"])]
    for check in report["checks"]:
        assert f"{check['ratio']:.2f}  {check['result']}" in table


def test_machine_record_names_the_cpu_kind_and_its_caches(tmp_path):
    bench = import_bench()
    for level, kind, size in (
        (1, "Data", "32K"),
        (1, "Instruction", "32K"),
        (2, "Unified", "1024K"),
        (3, "Unified", "32768K"),
    ):
        index = tmp_path / f"index{level}{kind[0]}"
        index.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (index / name).write_text(f"{value}\n")
    (tmp_path / "index9").mkdir()  # an unreadable entry is skipped, not fatal
    assert bench.cpu_caches(tmp_path) == {"L1d": "32K", "L1i": "32K", "L2": "1024K", "L3": "32768K"}
    assert bench.cpu_caches(tmp_path / "missing") == {}
    machine = {
        "llvm_cpu": "znver4",
        "cpu_family_model_stepping": ["25", "17", "1"],
        "caches": {"L2": "1024K", "L3": "32768K"},
    }
    assert bench.cpu_details(machine) == " (znver4, family 25 model 17 stepping 1; L2 1024K, L3 32768K)"
    assert bench.cpu_details({"caches": {"L2": "512K"}}) == " (L2 512K)"
    assert bench.cpu_details({}) == ""  # reports written before these fields existed
    record = bench.machine_info()
    assert record["llvm_cpu"] and isinstance(record["caches"], dict)
