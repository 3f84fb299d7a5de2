"""Record episodes as videos: a GIF always, an MP4 too when an encoder (imageio-ffmpeg) is installed.

``record_episode`` plays one episode with ``render_mode="rgb_array"`` and streams the frames
to the files, so memory stays flat however long the episode. ``add_render_arguments`` and
``run_render`` are the ``metalore render`` command, wired into the CLI by ``metalore.cli``::

    metalore render --policy twin_first --out episode.gif --scenario small --seed 3 --fps 8

Needs ``pip install "metalore[render]"`` (matplotlib, imageio, Pillow); MP4 output also needs
``pip install imageio-ffmpeg``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from metalore.config import PRESETS, Scenario
from metalore.io import atomic_path
from metalore.render import RENDER_INSTALL_HINT, require_matplotlib

__all__ = ["add_render_arguments", "mp4_available", "record_episode", "run_render"]

DEFAULT_FPS = 4  # the env's metadata["render_fps"]: one simulated second per 0.25 s of video


def mp4_available() -> bool:
    """Whether an MP4 encoder (imageio-ffmpeg) is installed."""
    return importlib.util.find_spec("imageio_ffmpeg") is not None


def _make_env(env_id_or_scenario: Any, config: Mapping[str, Any] | None) -> Any:
    """A MetaLore env in ``rgb_array`` mode from a Gymnasium id, a preset name or a Scenario."""
    import gymnasium as gym

    from metalore.env import MetaLoreEnv

    if isinstance(env_id_or_scenario, Scenario) or env_id_or_scenario in PRESETS:
        return MetaLoreEnv(env_id_or_scenario, config, render_mode="rgb_array")
    if isinstance(env_id_or_scenario, str) and env_id_or_scenario in gym.registry:
        kwargs: dict[str, Any] = {"config": dict(config)} if config else {}
        return gym.make(env_id_or_scenario, render_mode="rgb_array", **kwargs)
    raise ValueError(
        f"{env_id_or_scenario!r} is neither a registered Gymnasium id, a preset ({', '.join(PRESETS)}) nor a "
        "Scenario: pass e.g. 'MetaLore/Paper-v0' or 'paper'"
    )


class _GifWriter:
    """Appends frames to a GIF, keeping each frame as 8-bit palette data only (a quarter of RGB)."""

    def __init__(self, path: Path, fps: float) -> None:
        from PIL import Image

        self._image = Image
        self.path = path
        self.duration_ms = round(1000.0 / fps)
        self.frames: list[Any] = []

    def append(self, frame: np.ndarray) -> None:
        rgb = self._image.fromarray(frame)
        self.frames.append(rgb.convert("P", palette=self._image.Palette.ADAPTIVE, colors=256))

    def close(self) -> None:
        if not self.frames:  # recording failed before the first frame: leave no file behind
            return
        first, *rest = self.frames
        with atomic_path(self.path) as tmp:
            first.save(tmp, format="GIF", save_all=True, append_images=rest, duration=self.duration_ms, loop=0)
            tmp.chmod(0o644)  # the temporary file is private; the video is not


class _Mp4Writer:
    """Streams frames to an H.264 MP4 through imageio-ffmpeg."""

    def __init__(self, path: Path, fps: float) -> None:
        import imageio.v2 as imageio

        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # 8-pixel macro blocks: 1200x600 frames are encoded as they are (no resizing warning).
        self._writer = imageio.get_writer(path, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=8)

    def append(self, frame: np.ndarray) -> None:
        self._writer.append_data(frame)

    def close(self) -> None:
        self._writer.close()


def _writers(out_path: Path, fps: float) -> list[Any]:
    suffix = out_path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"output {str(out_path)!r} must end in .gif or .mp4 (both are written when possible)")
    if suffix == ".mp4" and not mp4_available():
        raise ImportError(f"writing {str(out_path)!r} needs an MP4 encoder: pip install imageio-ffmpeg")
    writers: list[Any] = [_GifWriter(out_path.with_suffix(".gif"), fps)]
    if mp4_available():
        writers.append(_Mp4Writer(out_path.with_suffix(".mp4"), fps))
    return writers


def record_episode(
    env_id_or_scenario: Any,
    policy_fn: Callable[[np.ndarray], Any] | None,
    out_path: str | Path,
    seed: int,
    steps: int | None = None,
    fps: float = DEFAULT_FPS,
    *,
    config: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Play one episode and write it as a GIF (and an MP4 when imageio-ffmpeg is installed).

    Args:
        env_id_or_scenario: a Gymnasium id (``"MetaLore/Paper-v0"``), a preset name or a Scenario.
        policy_fn: maps an observation to an action; a :class:`~metalore.policies.Policy` is used
            through its ``env_action`` (and reset with ``seed``). ``None``: uniform random actions
            from ``env.action_space`` seeded with ``seed``.
        out_path: ``something.gif`` or ``something.mp4``; the other format is written beside it
            (MP4 only if an encoder is installed).
        seed: episode seed.
        steps: steps to record (default and maximum: the episode length).
        fps: frames per second of the video.
        config: overrides merged over the scenario.
        progress: show a tqdm progress bar on stderr.

    Returns:
        The paths written: the GIF first, then the MP4 if any. The video holds ``steps + 1``
        frames: the state after ``reset`` and after every step.
    """
    require_matplotlib()
    if importlib.util.find_spec("PIL") is None:
        raise ImportError(f"writing a GIF needs Pillow: {RENDER_INSTALL_HINT}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if steps is not None and steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    from tqdm import tqdm

    env = _make_env(env_id_or_scenario, config)
    try:
        act = _policy_action(policy_fn, env, seed)
        episode_steps = int(env.unwrapped.scenario.steps)
        steps = episode_steps if steps is None else min(steps, episode_steps)
        writers = _writers(Path(out_path), fps)
        obs, _ = env.reset(seed=seed)
        try:
            with tqdm(total=steps, unit="step", desc="rendering", file=sys.stderr, disable=not progress) as bar:
                _append(writers, env.render())
                for _ in range(steps):
                    obs, _, terminated, truncated, _ = env.step(act(obs))
                    _append(writers, env.render())
                    bar.update()
                    if terminated or truncated:
                        break
        finally:
            for writer in writers:
                writer.close()
    finally:
        env.close()
    return [writer.path for writer in writers]


def _append(writers: list[Any], frame: np.ndarray) -> None:
    for writer in writers:
        writer.append(frame)


def _policy_action(policy_fn: Any, env: Any, seed: int) -> Callable[[np.ndarray], Any]:
    if policy_fn is None:
        env.action_space.seed(seed)
        return lambda obs: env.action_space.sample()
    if hasattr(policy_fn, "env_action"):  # a metalore Policy: its split mapped into the env's action space
        policy_fn.reset(seed=seed)
        return policy_fn.env_action
    if not callable(policy_fn):
        raise TypeError(f"policy_fn must be callable (observation -> action) or None, got {type(policy_fn).__name__}")
    return policy_fn


# --------------------------------------------------------------------------- the `metalore render` command
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if not 0 <= value <= 2**62:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**62], got {value}")
    return value


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``metalore render`` to ``parser`` (the CLI adds the scenario options)."""
    parser.add_argument("--policy", default="random", metavar="SPEC", help="policy spec (default: random)")
    parser.add_argument(
        "--out", default="episode.gif", metavar="FILE", help="video file, .gif or .mp4 (default: episode.gif)"
    )
    parser.add_argument("--seed", type=_seed, default=None, metavar="N", help="episode seed (default: episode.seed)")
    parser.add_argument("--fps", type=_positive_int, default=DEFAULT_FPS, metavar="N", help="frames per second")
    parser.add_argument("--steps", type=_positive_int, default=None, metavar="N", help="steps (default: the episode)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar; print only the files written")


def run_render(args: argparse.Namespace, scenario: Scenario) -> int:
    """Run ``metalore render`` on ``scenario``: record one episode of ``--policy``; print the files written.

    Raises ConfigError / PolicyError / ValueError / ImportError with a message for the CLI to print.
    """
    from metalore.policies import make_policy

    seed = args.seed if args.seed is not None else int(scenario.config["episode"]["seed"])
    policy = make_policy(args.policy, scenario, seed=seed)  # checks the spec before anything is rendered
    written = record_episode(scenario, policy, args.out, seed, steps=args.steps, fps=args.fps, progress=not args.quiet)
    for path in written:
        print(path)
    if not args.quiet and len(written) == 1:
        print("metalore: MP4 not written (no encoder): pip install imageio-ffmpeg", file=sys.stderr)
    return 0
