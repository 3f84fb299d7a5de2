"""Rendering: frames, determinism, the bounded history, videos, and the render-mode contract."""

from __future__ import annotations

import copy
import importlib.util
import itertools
import os

os.environ["MPLBACKEND"] = "Agg"  # before matplotlib is imported anywhere in this process

import shutil
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ClosedEnvironmentError
from gymnasium.vector import AutoresetMode

pytest.importorskip("matplotlib")
pytest.importorskip("PIL")

from PIL import Image

from metalore import MetaLoreEnv, MetaLoreVectorEnv
from metalore import render as render_module
from metalore.render import BS_COLOR, UE_CLASS_COLOR, Renderer, RenderError
from metalore.video import mp4_available, record_episode

SHORT = {"episode": {"steps": 12}}


def rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)


def play(env: MetaLoreEnv, steps: int, seed: int = 5, action_seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(action_seed)
    env.reset(seed=seed)
    frames = [env.render()]
    for _ in range(steps):
        env.step(rng.random(env.action_space.shape))
        frames.append(env.render())
    return frames


@pytest.fixture(scope="module")
def paper_frames() -> list[np.ndarray]:
    env = MetaLoreEnv("paper", SHORT, render_mode="rgb_array")
    return play(env, 10)


def test_frame_is_rgb_uint8_of_the_default_size(paper_frames):
    for frame in paper_frames:
        assert frame.shape == (600, 1200, 3)
        assert frame.dtype == np.uint8
        assert frame.flags.writeable


def test_frames_are_not_blank(paper_frames):
    frame = paper_frames[-1]
    assert frame.std() > 30
    colours = np.unique(frame.reshape(-1, 3), axis=0)
    assert len(colours) > 100


def test_frames_change_as_the_episode_runs(paper_frames):
    differences = [np.mean(np.any(a != b, axis=2)) for a, b in itertools.pairwise(paper_frames)]
    assert all(d > 0.001 for d in differences)  # every step moves UEs, bars and curves


def test_reference_frame_properties(paper_frames):
    start, later = paper_frames[0], paper_frames[-1]
    for frame in (start, later):
        non_white = np.mean(np.any(frame < 245, axis=2))
        assert 0.08 < non_white < 0.45, non_white
        bs_pixels = np.all(frame == rgb(BS_COLOR), axis=2).sum()
        assert bs_pixels > 100  # the BS triangle (and its label)
    # After steps the split bars show the UE class colour; at reset they are empty.
    assert np.all(later == rgb(UE_CLASS_COLOR), axis=2).sum() > np.all(start == rgb(UE_CLASS_COLOR), axis=2).sum() + 500


def test_same_seed_and_actions_give_identical_frames(paper_frames):
    again = play(MetaLoreEnv("paper", SHORT, render_mode="rgb_array"), 10)
    assert all(np.array_equal(a, b) for a, b in zip(paper_frames, again, strict=True))


def test_frames_do_not_depend_on_which_steps_were_rendered(paper_frames):
    env = MetaLoreEnv("paper", SHORT, render_mode="rgb_array")
    rng = np.random.default_rng(0)
    env.reset(seed=5)
    for _ in range(10):
        env.step(rng.random(env.action_space.shape))
    assert np.array_equal(env.render(), paper_frames[-1])


def test_a_copied_env_draws_the_frames_of_the_original(paper_frames):
    env = MetaLoreEnv("paper", SHORT, render_mode="rgb_array")
    rng = np.random.default_rng(0)  # the actions of paper_frames
    env.reset(seed=5)
    for _ in range(6):
        env.step(rng.random(env.action_space.shape))
    env.render()  # the original has a figure; the copy builds its own
    copied = copy.deepcopy(env)
    for frame in paper_frames[7:]:
        copied.step(rng.random(env.action_space.shape))
        assert np.array_equal(copied.render(), frame)  # the recorded history came along: same curves
    env.close()
    copied.close()


def test_rendering_does_not_change_the_dynamics():
    plain = MetaLoreEnv("small", SHORT)
    drawn = MetaLoreEnv("small", SHORT, render_mode="rgb_array")
    for env in (plain, drawn):
        env.reset(seed=3)
    rng = np.random.default_rng(1)
    for _ in range(12):
        action = rng.random(plain.action_space.shape)
        a, b = plain.step(action), drawn.step(action)
        drawn.render()
        assert np.array_equal(a[0], b[0]) and a[1] == b[1]


def test_render_mode_none_never_creates_a_renderer(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a renderer was created with render_mode=None")

    monkeypatch.setattr(render_module, "Renderer", forbidden)
    env = MetaLoreEnv("small", SHORT)
    env.reset(seed=0)
    for _ in range(3):
        env.step(env.action_space.sample())
    assert env._renderer is None
    assert env.render() is None


def test_import_metalore_does_not_import_matplotlib():
    code = "import sys, metalore; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "metalore\[render\]"'):
        MetaLoreEnv("small", render_mode="rgb_array")


def test_human_mode_without_a_display_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(render_module.sys, "platform", "linux")
    env = MetaLoreEnv("small", render_mode="human")  # creating and resetting work anywhere (check_env does both)
    env.reset(seed=0)
    with pytest.raises(RenderError, match=r"DISPLAY.*rgb_array"):
        env.step(env.action_space.sample())  # human mode draws during step
    with pytest.raises(RenderError, match=r"DISPLAY.*rgb_array"):
        env.render()


def test_unknown_render_mode_is_rejected():
    with pytest.raises(ValueError, match="render_mode 'ansi'"):
        MetaLoreEnv("small", render_mode="ansi")
    assert MetaLoreEnv.metadata["render_modes"] == ["rgb_array", "human"]


def test_history_is_a_bounded_ring_buffer():
    env = MetaLoreEnv("small", SHORT)
    renderer = Renderer(env.sim, history=4)
    env.reset(seed=0)
    renderer.record(None)
    for _ in range(6):
        env.step(env.action_space.sample())
        renderer.record(env._action_buffer[0])
    rows = renderer.history()
    assert rows.shape == (4, 8)
    assert rows[:, 0].tolist() == [3, 4, 5, 6]  # oldest first
    env.reset(seed=1)
    renderer.record(None)
    assert renderer.history()[:, 0].tolist() == [0]


def test_ue_colour_is_the_aori_of_the_last_completed_request():
    env = MetaLoreEnv("paper", {"episode": {"steps": 30}, "log": {"jobs": True}}, render_mode="rgb_array")
    rng = np.random.default_rng(2)
    env.reset(seed=9)
    for _ in range(30):
        env.step(rng.random(env.action_space.shape))
    log = env.job_log()
    done = log[(log["kind"] == "ue") & log["t_proc_done"].notna()]
    expected = np.full(env.scenario.num_ues, np.nan)
    for row in done.sort_values(["t_proc_done", "job_id"]).itertuples():  # completion order (one BS: FIFO)
        expected[row.device_id] = row.aori
    assert np.isfinite(expected).sum() >= 5
    np.testing.assert_array_equal(env._renderer._ue_aori, expected)


def test_record_episode_writes_a_readable_gif(tmp_path):
    written = record_episode("small", None, tmp_path / "episode.gif", seed=4, steps=3, fps=5, progress=False)
    assert written[0] == tmp_path / "episode.gif"
    with Image.open(written[0]) as gif:
        assert gif.n_frames == 4  # the reset frame and one per step
        assert gif.size == (1200, 600)
    if mp4_available():
        assert written[1].suffix == ".mp4" and written[1].stat().st_size > 0


@pytest.mark.slow
def test_gymnasium_record_video_wrapper(tmp_path):
    pytest.importorskip("moviepy")
    env = gym.wrappers.RecordVideo(
        gym.make("MetaLore/Small-v0", render_mode="rgb_array", config={"episode": {"steps": 5}}),
        video_folder=str(tmp_path / "videos"),
        episode_trigger=lambda episode: True,
        disable_logger=True,
    )
    env.reset(seed=0)
    truncated = False
    while not truncated:
        _, _, _, truncated, _ = env.step(env.action_space.sample())
    env.close()
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_vector_env_frames_equal_gymnasiums_sync_vector_env_of_single_envs(mode):
    # Each sub-env's frame is the single env's frame of the same episode, pixel for pixel, also
    # across autoresets (the dashboard's history restarts with each sub-env's new episode).
    kwargs = {"config": {"episode": {"steps": 3}}, "render_mode": "rgb_array"}
    theirs = gym.make_vec(
        "MetaLore/Small-v0", num_envs=2, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode}, **kwargs
    )
    ours = gym.make_vec(
        "MetaLore/Small-v0", num_envs=2, vectorization_mode="vector_entry_point", autoreset_mode=mode, **kwargs
    )
    assert isinstance(ours.unwrapped, MetaLoreVectorEnv) and ours.render_mode == "rgb_array"
    theirs.reset(seed=4)
    ours.reset(seed=4)
    rng = np.random.default_rng(4)
    compared = 0
    for step in range(9):
        actions = rng.random((2, 2)).astype(np.float32)
        theirs.step(actions)
        ours.step(actions)
        if step in (0, 2, 3, 4, 8):  # mid-episode, at the ends (steps 2 and 3 by mode) and after
            mine, their = ours.render(), theirs.render()
            assert len(mine) == len(their) == 2
            for a, b in zip(mine, their, strict=True):
                assert a.shape == (600, 1200, 3) and np.array_equal(a, b)
            compared += 1
    assert not np.array_equal(mine[0], mine[1])  # two sub-envs, two episodes
    assert compared == 5
    theirs.close()
    ours.close()


def test_vector_env_render_modes():
    venv = MetaLoreVectorEnv(2, "small", SHORT)
    venv.reset(seed=0)
    with pytest.warns(UserWarning, match='render_mode="rgb_array"'):
        assert venv.render() is None
    with pytest.raises(ValueError, match=r"render_mode .human. is not supported by the vector env: .*HumanRendering"):
        MetaLoreVectorEnv(2, "small", render_mode="human")
    assert MetaLoreVectorEnv.metadata["render_modes"] == ["rgb_array"]
    drawn = MetaLoreVectorEnv(2, "small", SHORT, render_mode="rgb_array")
    drawn.reset(seed=0)
    assert len(drawn.render()) == 2
    drawn.close()
    with pytest.raises(ClosedEnvironmentError, match="closed"):
        drawn.render()


@pytest.mark.slow
def test_gymnasium_vector_record_video_wrapper(tmp_path):
    pytest.importorskip("moviepy")
    from gymnasium.wrappers.vector import RecordVideo

    venv = RecordVideo(
        gym.make_vec(
            "MetaLore/Small-v0", num_envs=2, vectorization_mode="vector_entry_point", render_mode="rgb_array",
            config={"episode": {"steps": 4}},
        ),
        video_folder=str(tmp_path / "videos"),
        episode_trigger=lambda episode: episode == 0,
        disable_logger=True,
    )  # fmt: skip
    venv.reset(seed=0)
    for _ in range(5):
        venv.step(np.full((2, 2), 0.5, np.float32))
    venv.close()
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0


def test_gymnasium_render_checks_pass_in_rgb_array_mode():
    from gymnasium.utils.passive_env_checker import env_render_passive_checker

    env = gym.make("MetaLore/Small-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env_render_passive_checker(env.unwrapped)
    assert isinstance(frame, np.ndarray) and frame.shape == (600, 1200, 3)


HUMAN_CHILD = """
import os, sys
import numpy as np
import gymnasium as gym
import matplotlib
import metalore
from PIL import ImageGrab

env = gym.make("MetaLore/Paper-v0", render_mode="human")
env.reset(seed=3)
for _ in range(6):
    env.step(np.array([0.8, 0.3], dtype=np.float32))
import matplotlib.pyplot as plt
# what the window system does when the window is exposed or resized: a full redraw by the GUI
plt.gcf().canvas.draw()
plt.pause(0.3)
print("backend", matplotlib.get_backend(), "figures", len(plt.get_fignums()))
ImageGrab.grab(xdisplay=os.environ["DISPLAY"]).save(sys.argv[1])
env.close()
print("open after close", len(plt.get_fignums()))
"""


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run (Debian's xvfb; .ci/run installs it)")
@pytest.mark.skipif(importlib.util.find_spec("tkinter") is None, reason="needs a GUI toolkit for matplotlib (tkinter)")
def test_human_mode_opens_a_window_on_a_virtual_display(tmp_path):
    shot = tmp_path / "screen.png"
    done = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", sys.executable, "-c", HUMAN_CHILD, str(shot)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    backend = done.stdout.split("backend ")[1].split()[0]
    assert backend.lower() in {"tkagg", "qtagg", "gtk3agg", "gtk4agg", "wxagg"}, done.stdout  # an interactive one
    assert "figures 1" in done.stdout and "open after close 0" in done.stdout
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=int)
    window = pixels[:600, :1200]  # the 1200x600 figure sits at the top left of the empty screen
    assert window.std() > 20  # drawn, not a blank window
    # the UE share bar (0.8 of bandwidth) is drawn in the UE class colour
    ue = np.array([int(UE_CLASS_COLOR[i : i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(window - ue).sum(axis=-1) < 30).sum() > 2000
    assert (np.abs(pixels[700:] - pixels[-1, -1]).sum(axis=-1) > 0).mean() < 0.01  # nothing below window + toolbar
