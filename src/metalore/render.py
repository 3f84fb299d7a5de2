"""Rendering: see what the simulator does (``render_mode="rgb_array"`` or ``"human"``).

The :class:`Renderer` only *reads* the simulator (positions, queues, the twin, the step
outputs); it never changes the dynamics. The env calls :meth:`Renderer.record` after every
``reset`` and ``step`` when a render mode is set, which appends a few numbers to a bounded
history (a ring buffer); :meth:`Renderer.frame` draws the map and the dashboard from that
history with matplotlib on one reused figure whose artists are updated in place.

matplotlib is an optional dependency (``pip install "metalore[render]"``) and is imported
only when a renderer is created, never by ``import metalore``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import numpy as np

from metalore.core.state import S_AORI_SUM, S_AOSI_SUM, S_REWARD, S_UE_DONE, SENSOR, UE

__all__ = [
    "BS_COLOR",
    "HISTORY_STEPS",
    "RENDER_INSTALL_HINT",
    "RenderError",
    "RenderMixin",
    "Renderer",
    "require_matplotlib",
]

RENDER_INSTALL_HINT = 'pip install "metalore[render]"'
HISTORY_STEPS = 200  # steps of history the dashboard keeps (ring buffer)
FIGSIZE_IN = (12.0, 6.0)
DPI = 100  # 1200 x 600 px frames
BS_COLOR = "#1f4e9c"  # base stations (no colormap of the map uses blue)
UE_CLASS_COLOR = "#8e44ad"  # UE class in the dashboard (purple)
SENSOR_CLASS_COLOR = "#16a085"  # sensor class in the dashboard (teal)
NO_DATA_COLOR = "#d9d9d9"  # a sensor the twin has no update of / a UE with no completed request
AGE_CMAP = "RdYlGn_r"  # green = fresh, red = stale, for both twin age and AoRI
MAX_ID_LABELS = 60  # label devices with their ids only when there are at most this many
# History columns (one row per recorded step).
H_T, H_UE_UPLINK, H_SENSOR_UPLINK, H_UE_MEC, H_SENSOR_MEC, H_AORI, H_AOSI, H_REWARD = range(8)
_QUEUE_SERIES = (
    (H_UE_UPLINK, "UE uplink", UE_CLASS_COLOR, "--"),
    (H_SENSOR_UPLINK, "sensor uplink", SENSOR_CLASS_COLOR, "--"),
    (H_UE_MEC, "UE at MEC", UE_CLASS_COLOR, "-"),
    (H_SENSOR_MEC, "sensor at MEC", SENSOR_CLASS_COLOR, "-"),
)


class RenderError(RuntimeError):
    """Rendering cannot work here (no display for ``human`` mode, no GUI backend)."""


def require_matplotlib() -> Any:
    """Import and return matplotlib, or raise ImportError with the install command."""
    try:
        return importlib.import_module("matplotlib")
    except ImportError as exc:
        raise ImportError(
            f"rendering MetaLore needs matplotlib, which is not installed: {RENDER_INSTALL_HINT}"
        ) from exc


def _nice_ceiling(value: float, minimum: float) -> float:
    """Smallest of 1, 2, 5 x 10^k that is >= ``value`` (and >= ``minimum``): axis limits that rarely change."""
    value = max(float(value), minimum)
    exponent = 10.0 ** np.floor(np.log10(value))
    for mantissa in (1.0, 2.0, 5.0, 10.0):
        if mantissa * exponent >= value:
            return float(mantissa * exponent)
    return float(10.0 * exponent)  # pragma: no cover - the loop always returns


def _display_available() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class Renderer:
    """Draws frames of one environment of a :class:`~metalore.core.simulator.BatchSimulator`.

    Args:
        sim: the simulator to read (environment ``env_index`` of its batch).
        render_mode: ``"rgb_array"`` (frames as ``(H, W, 3)`` uint8 arrays) or ``"human"``
            (a matplotlib window; needs a display and an interactive backend).
        env_index: which environment of the batch to draw.
        history: steps of history kept for the time series.
        fps: frames per second of the ``human`` window.

    Left panel: the map (area, BSs, UEs and sensors with ids, UE->BS association, each UE's
    nearest sensor, i.e. the one its next request will need; sensors coloured by the age of
    their data in the twin, UEs by the AoRI of their last completed request). Right panel:
    the current split per BS, the four queue families, the running mean AoRI/AoSI and the
    reward per step.
    """

    def __init__(
        self, sim: Any, render_mode: str = "rgb_array", env_index: int = 0, history: int = HISTORY_STEPS, fps: int = 4
    ) -> None:
        if render_mode not in ("rgb_array", "human"):
            raise ValueError(f"render_mode {render_mode!r} is not supported: use 'rgb_array' or 'human'")
        if history < 2:
            raise ValueError(f"history must be >= 2 steps, got {history}")
        require_matplotlib()
        self.sim = sim
        self.render_mode = render_mode
        self.b = env_index
        self.fps = fps
        p = sim.params
        self.num_ues = int(p.num_ues)
        self.num_bs = len(p.bs_pos_m)
        self.num_sensors = len(p.dev_height_m) - self.num_ues
        self._hist = np.full((history, 8), np.nan)
        self._count = 0  # rows recorded since the last reset (the newest is row (count - 1) % history)
        self._split = np.full((self.num_bs, 2), np.nan)  # (bw_ue, comp_ue) per BS of the last step
        self._ue_aori = np.full(self.num_ues, np.nan)  # AoRI of each UE's last completed request
        self._fig: Any = None
        self._episode = 0  # resets recorded (a new episode redraws the static layer: sensors move)
        self._background: Any = None
        self._own_draw = False  # True while _draw() itself redraws the static layer
        self._background_key: Any = None
        self._background_limits: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """A copied env keeps the recorded history; its figure is built anew at the next frame."""
        saved = self.__dict__.copy()
        saved.update(_fig=None, _background=None, _background_key=None, _background_limits=None, _own_draw=False)
        return saved

    # ----------------------------------------------------------------- recording (cheap, every step)
    def record(self, action: np.ndarray | None = None) -> None:
        """Append the current state to the history; ``action`` is the (M, 2) split in [0, 1] just applied.

        Called by the env after ``reset`` (``action=None``: a new episode clears the history)
        and after each ``step``.
        """
        s, b, k = self.sim.state, self.b, self.num_ues
        if action is None:
            self._hist.fill(np.nan)
            self._count = 0
            self._split.fill(np.nan)
            self._ue_aori.fill(np.nan)
            self._episode += 1
        else:
            self._split[:] = np.asarray(action, dtype=np.float64).reshape(self.num_bs, 2)
            self._update_ue_aori()
        done = s.stats[b, S_UE_DONE]
        row = self._hist[self._count % len(self._hist)]
        row[H_T] = s.t[b]
        row[H_UE_UPLINK] = s.dq_len[b, :k].sum()
        row[H_SENSOR_UPLINK] = s.dq_len[b, k:].sum()
        row[H_UE_MEC] = s.bq_len[b, :, UE].sum()
        row[H_SENSOR_MEC] = s.bq_len[b, :, SENSOR].sum()
        row[H_AORI] = s.stats[b, S_AORI_SUM] / done if done else np.nan
        row[H_AOSI] = s.stats[b, S_AOSI_SUM] / done if done else np.nan
        row[H_REWARD] = self.sim.out.reward[b] if action is not None else np.nan
        self._count += 1

    def _update_ue_aori(self) -> None:
        """AoRI of the UE jobs completed in the last step, per UE, in completion order (the last wins)."""
        out, b = self.sim.out, self.b
        n = int(out.done_n[b])
        self._ue_aori[out.done_ue[b, :n]] = out.done_aori[b, :n]

    def history(self) -> np.ndarray:
        """The recorded rows, oldest first: columns t, the four queue families, mean AoRI, mean AoSI, reward."""
        size = len(self._hist)
        if self._count <= size:
            return self._hist[: self._count]
        start = self._count % size
        return np.concatenate([self._hist[start:], self._hist[:start]])

    # ----------------------------------------------------------------- drawing
    def frame(self) -> np.ndarray:
        """Draw the current state and return it as an ``(H, W, 3)`` uint8 RGB array."""
        self._draw()
        from PIL import Image  # a matplotlib dependency; drops the alpha channel twice as fast as numpy

        width, height = self._fig.canvas.get_width_height(physical=True)
        rgba = Image.frombuffer("RGBA", (width, height), self._fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        return np.array(rgba.convert("RGB"))

    def show(self) -> None:
        """Draw the current state in the ``human`` window and let the GUI process its events."""
        import matplotlib.pyplot as plt

        if self._fig is not None and not plt.fignum_exists(self._fig.number):  # the window was closed
            self._fig = None
        self._draw()
        self._fig.canvas.blit(self._fig.bbox)
        self._fig.canvas.flush_events()
        plt.pause(1.0 / max(self.fps, 1))

    def close(self) -> None:
        """Close the window (``human``) and free the figure."""
        if self._fig is not None and self.render_mode == "human":
            import matplotlib.pyplot as plt

            plt.close(self._fig)
        self._fig = None

    def _draw(self) -> None:
        """Blit: the static layer (axes, ticks, legends, colorbars) is drawn only when it changes.

        The whole static layer is redrawn at a new episode (sensors are placed anew) or when
        the canvas is resized; a time-series panel is redrawn alone when its limits snap to
        new round values. Otherwise a frame restores the cached static layer and draws only
        the dynamic artists on top.
        """
        if self._fig is None:
            self._build()
        self._update_map()
        limits = self._update_dashboard()
        canvas = self._fig.canvas
        key = (self._episode, canvas.get_width_height())
        if key != self._background_key:
            for axis, axis_limits in zip(self._series_axes, limits, strict=True):
                _set_limits(axis, axis_limits)
            self._own_draw = True
            try:
                canvas.draw()
            finally:
                self._own_draw = False
            self._background = canvas.copy_from_bbox(self._fig.bbox)
            self._background_key = key
            self._background_limits = limits
        else:
            canvas.restore_region(self._background)
            if limits != self._background_limits:
                self._redraw_panels(limits)
        for artist in self._dynamic:
            self._fig.draw_artist(artist)

    def _on_gui_draw(self, _event: Any) -> None:
        """Put the dynamic artists back after a full redraw by the GUI (window shown, exposed, resized, zoomed).

        Such a draw leaves animated artists out: re-cache the static layer it produced and blit
        the dynamic artists on top, so the window never shows an empty dashboard.
        """
        if self._own_draw or self._fig is None:
            return
        canvas = self._fig.canvas
        self._background = canvas.copy_from_bbox(self._fig.bbox)
        self._background_key = (self._episode, canvas.get_width_height())
        for artist in self._dynamic:
            self._fig.draw_artist(artist)
        canvas.blit(self._fig.bbox)

    def _redraw_panels(self, limits: tuple[tuple[float, float, float, float], ...]) -> None:
        """Redraw the static layer of the time-series panels whose limits changed, then re-cache it."""
        from matplotlib.patches import Rectangle
        from matplotlib.transforms import Bbox, IdentityTransform

        renderer = self._fig.canvas.get_renderer()
        for axis, new, old in zip(self._series_axes, limits, self._background_limits, strict=True):
            if new == old:
                continue
            before = axis.get_tightbbox(renderer)
            _set_limits(axis, new)
            area = Bbox.union([before, axis.get_tightbbox(renderer)]).padded(2)
            eraser = Rectangle(
                (area.x0, area.y0), area.width, area.height, transform=IdentityTransform(),
                facecolor=self._fig.get_facecolor(), edgecolor="none",
            )  # fmt: skip
            eraser.set_figure(self._fig)
            eraser.draw(renderer)
            axis.draw(renderer)
        self._background = self._fig.canvas.copy_from_bbox(self._fig.bbox)
        self._background_limits = limits

    def _new_figure(self) -> Any:
        if self.render_mode == "rgb_array":
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            fig = Figure(figsize=FIGSIZE_IN, dpi=DPI)
            FigureCanvasAgg(fig)
            return fig
        plt = _interactive_pyplot()
        fig = plt.figure("MetaLore", figsize=FIGSIZE_IN, dpi=DPI)
        plt.show(block=False)
        plt.pause(0.001)  # let the window appear before the first blit
        return fig

    def _build(self) -> None:
        """Create the figure and every artist once; frames only update their data."""
        fig = self._new_figure()
        fig.set_facecolor("white")
        self._fig = fig
        self._background_key = None
        fig.text(0.01, 0.965, f"MetaLore · {self.sim.scenario.name}", ha="left", va="center", fontsize=13,
                 weight="bold")  # fmt: skip
        self._title = fig.text(0.60, 0.965, "", ha="center", va="center", fontsize=12)
        self._build_map(fig)
        self._build_dashboard(fig)
        self._dynamic = [
            self._title,
            self._nearest_lines,
            self._assoc_lines,
            self._sensors,
            self._ues,
            self._ue_labels,
            *self._split_ue.patches,
            *self._split_sensor.patches,
            *self._split_text,
            *self._queue_lines,
            self._aori_line,
            self._aosi_line,
            self._reward_line,
        ]
        for artist in self._dynamic:
            artist.set_animated(True)
        if self.render_mode == "human":
            fig.canvas.mpl_connect("draw_event", self._on_gui_draw)

    def _build_map(self, fig: Any) -> None:
        from matplotlib import colormaps
        from matplotlib.collections import LineCollection, PathCollection
        from matplotlib.colors import Normalize
        from matplotlib.font_manager import FontProperties
        from matplotlib.lines import Line2D
        from matplotlib.patches import Rectangle
        from matplotlib.textpath import TextPath
        from matplotlib.transforms import Affine2D

        p = self.sim.params
        ax = fig.add_axes((0.045, 0.20, 0.40, 0.70))
        width, height = float(p.area_w_m), float(p.area_h_m)
        pad = 0.03 * max(width, height)
        ax.set_xlim(-pad, width + pad)
        ax.set_ylim(-pad, height + pad)
        ax.set_aspect("equal", adjustable="box")
        ax.add_patch(Rectangle((0, 0), width, height, fill=False, lw=1.2, ec="#555555"))
        ax.set_xlabel("x (m)", fontsize=9)
        ax.set_ylabel("y (m)", fontsize=9)
        ax.tick_params(labelsize=8)
        cmap = colormaps[AGE_CMAP].with_extremes(bad=NO_DATA_COLOR)
        late = int(p.late_threshold)
        self._nearest_lines = LineCollection([], colors="#777777", linewidths=0.8, linestyles=(0, (3, 3)), zorder=1)
        self._assoc_lines = LineCollection([], colors=BS_COLOR, linewidths=1.0, alpha=0.45, zorder=1)
        ax.add_collection(self._nearest_lines)
        ax.add_collection(self._assoc_lines)
        self._sensors = ax.scatter(
            np.zeros(self.num_sensors), np.zeros(self.num_sensors), c=np.zeros(self.num_sensors), cmap=cmap,
            norm=Normalize(0.0, 10.0), marker="s", s=70, edgecolors="#333333", linewidths=0.8, zorder=3,
        )  # fmt: skip
        self._ues = ax.scatter(
            np.zeros(self.num_ues), np.zeros(self.num_ues), c=np.zeros(self.num_ues), cmap=cmap,
            norm=Normalize(0.0, float(max(2 * late + 2, 6))), marker="o", s=90, edgecolors="black",
            linewidths=1.0, zorder=4,
        )  # fmt: skip
        ax.scatter(p.bs_pos_m[:, 0], p.bs_pos_m[:, 1], marker="^", s=260, c=BS_COLOR, edgecolors="white", zorder=5)
        for m, (x, y) in enumerate(p.bs_pos_m):
            ax.annotate(f"BS{m}", (x, y), xytext=(0, -17), textcoords="offset points", ha="center", va="center",
                        fontsize=9, weight="bold", color=BS_COLOR, zorder=6)  # fmt: skip
        labels = self.num_ues + self.num_sensors <= MAX_ID_LABELS
        label_size = 7.5
        label_style: dict[str, Any] = {"textcoords": "offset points", "fontsize": label_size, "zorder": 6}
        # UE ids move every frame: drawn as glyph outlines in one collection (one draw call, not one per text).
        font = FontProperties(size=label_size, weight="bold")
        self._ue_labels = PathCollection(
            [TextPath((6.0, 5.0), f"u{k}", prop=font) for k in range(self.num_ues if labels else 0)],
            offsets=np.zeros((self.num_ues if labels else 0, 2)), offset_transform=ax.transData,
            transform=Affine2D().scale(fig.dpi / 72.0), facecolors="black", edgecolors="none", zorder=6,
        )  # fmt: skip
        ax.add_collection(self._ue_labels, autolim=False)
        self._sensor_labels = [  # static layer: sensors move only between episodes
            ax.annotate(f"s{n}", (0, 0), xytext=(6, -9), color="#444444", **label_style)
            for n in range(self.num_sensors if labels else 0)
        ]
        handles = [
            Line2D([], [], marker="^", ls="", color=BS_COLOR, ms=10, label="base station + MEC"),
            Line2D([], [], marker="o", ls="", mfc="#bbbbbb", mec="black", ms=8, label="UE (colour: last AoRI)"),
            Line2D([], [], marker="s", ls="", mfc="#bbbbbb", mec="#333333", ms=7, label="sensor (colour: twin age)"),
            Line2D([], [], color=BS_COLOR, alpha=0.6, label="UE → serving BS"),
            Line2D([], [], color="#777777", ls=(0, (3, 3)), label="UE → nearest sensor"),
            Line2D([], [], marker="o", ls="", mfc=NO_DATA_COLOR, mec="#777777", ms=7, label="grey: none yet"),
        ]
        fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.01, 0.005), ncol=3, fontsize=8,
                   frameon=False, handletextpad=0.4, columnspacing=1.0)  # fmt: skip
        sensor_bar = fig.colorbar(self._sensors, cax=fig.add_axes((0.46, 0.20, 0.012, 0.70)), extend="max")
        sensor_bar.set_label("sensor: age of twin data (steps)", fontsize=8, labelpad=2)
        sensor_bar.ax.tick_params(labelsize=7)
        aori_bar = fig.colorbar(self._ues, cax=fig.add_axes((0.515, 0.20, 0.012, 0.70)), extend="max")
        aori_bar.set_label(f"UE: AoRI of last completed request (steps; late > {late})", fontsize=8, labelpad=2)
        aori_bar.ax.tick_params(labelsize=7)
        aori_bar.ax.axhline(late, color="black", lw=1.2)

    def _build_dashboard(self, fig: Any) -> None:
        late = int(self.sim.params.late_threshold)
        left, right, bottom, top, gap_x, gap_y = 0.61, 0.985, 0.08, 0.86, 0.08, 0.17
        w, h = (right - left - gap_x) / 2, (top - bottom - gap_y) / 2
        ax_split = fig.add_axes((left, bottom + h + gap_y, w, h))
        ax_queue = fig.add_axes((left + w + gap_x, bottom + h + gap_y, w, h))
        ax_age = fig.add_axes((left, bottom, w, h))
        ax_reward = fig.add_axes((left + w + gap_x, bottom, w, h))
        self._series_axes = (ax_queue, ax_age, ax_reward)
        for axis in (ax_split, *self._series_axes):
            axis.tick_params(labelsize=8)
            axis.grid(alpha=0.3, lw=0.6)
        for axis in self._series_axes:
            axis.set_xlabel("step", fontsize=8, labelpad=1)
        above = {"loc": "lower center", "bbox_to_anchor": (0.5, 1.0), "fontsize": 7.5, "frameon": False,
                 "handlelength": 1.8, "columnspacing": 1.0, "borderaxespad": 0.2}  # fmt: skip

        positions = np.arange(2 * self.num_bs, dtype=np.float64)
        zeros = np.zeros(2 * self.num_bs)
        self._split_ue = ax_split.bar(positions, zeros, width=0.7, color=UE_CLASS_COLOR, label="UEs")
        self._split_sensor = ax_split.bar(positions, zeros, width=0.7, color=SENSOR_CLASS_COLOR, label="sensors")
        value_size = 8 if self.num_bs == 1 else 6.5
        self._split_text = [
            ax_split.text(x, 0.5, "", ha="center", va="center", fontsize=value_size, color="white", weight="bold")
            for x in positions
        ]
        ax_split.set_xticks(positions)
        kinds = ("bandwidth", "compute") if self.num_bs == 1 else ("bw", "comp")
        tags = [f"\nBS{m}" if self.num_bs > 1 else "" for m in range(self.num_bs)]
        ax_split.set_xticklabels([f"{kind}{tag}" for tag in tags for kind in kinds], fontsize=8)
        ax_split.set_ylim(0, 1)
        ax_split.set_xlim(-0.6, 2 * self.num_bs - 0.4)
        ax_split.set_ylabel("share of the BS (action)", fontsize=8)
        ax_split.legend(ncol=2, title="split of the last step", title_fontsize=8, **above)

        self._queue_lines = [
            ax_queue.plot([], [], color=color, ls=style, lw=1.5, label=label)[0]
            for _, label, color, style in _QUEUE_SERIES
        ]
        ax_queue.set_ylabel("queued jobs", fontsize=8)
        # right-aligned: centred, this legend is wider than its panel and ran past the figure's right edge
        ax_queue.legend(ncol=2, **{**above, "loc": "lower right", "bbox_to_anchor": (1.0, 1.0)})
        self._aori_line = ax_age.plot([], [], color="#c0392b", lw=1.6, label="AoRI")[0]
        self._aosi_line = ax_age.plot([], [], color="#2c3e50", lw=1.6, label="AoSI")[0]
        ax_age.axhline(late, color="#c0392b", lw=0.8, ls=":", label=f"late > {late}")
        ax_age.set_ylabel("running mean (steps)", fontsize=8)
        ax_age.legend(ncol=3, title="age of served UE requests", title_fontsize=8, **above)
        self._reward_line = ax_reward.plot([], [], color="#34495e", lw=1.3, marker=".", ms=3)[0]
        ax_reward.axhline(0.0, color="black", lw=0.6)
        ax_reward.set_title("reward per step", fontsize=9)

    def _nearest_sensor(self, ue_pos: np.ndarray, sensor_pos: np.ndarray) -> np.ndarray:
        """Index of each UE's nearest sensor (ties: lowest id), as the simulator binds requests."""
        d2 = ((ue_pos[:, None, :] - sensor_pos[None, :, :]) ** 2).sum(axis=2)
        return np.argmin(d2, axis=1)

    def _update_map(self) -> None:
        s, out, b, k = self.sim.state, self.sim.out, self.b, self.num_ues
        p = self.sim.params
        pos = s.pos_m[b]
        ue_pos, sensor_pos = pos[:k], pos[k:]
        t = int(s.t[b])
        twin = s.twin[b]
        twin_age = np.where(twin >= 0, t - 1 - twin, np.nan)
        self._sensors.set_offsets(sensor_pos)
        self._sensors.set_array(np.ma.masked_invalid(twin_age))
        self._ues.set_offsets(ue_pos)
        self._ues.set_array(np.ma.masked_invalid(self._ue_aori))
        assoc = self.sim.state.assoc[b, :k] if t > 0 else np.full(k, -1)
        linked = assoc >= 0
        self._assoc_lines.set_segments(list(np.stack([ue_pos[linked], p.bs_pos_m[assoc[linked]]], axis=1)))
        if self.num_sensors and k:
            nearest = self._nearest_sensor(ue_pos, sensor_pos)
            self._nearest_lines.set_segments(list(np.stack([ue_pos, sensor_pos[nearest]], axis=1)))
        if len(self._ue_labels.get_paths()):
            self._ue_labels.set_offsets(ue_pos)
        for label, xy in zip(self._sensor_labels, sensor_pos, strict=False):
            label.xy = tuple(xy)  # drawn with the static layer, which a new episode redraws
        summary = s.stats[b]
        done = int(summary[S_UE_DONE])
        reward = f"{out.reward[b]:.1f}" if t > 0 else "-"
        self._title.set_text(
            f"step {t}/{p.steps}    reward {reward}    episode reward {summary[S_REWARD]:.1f}"
            f"    UE requests served {done}"
        )

    def _update_dashboard(self) -> tuple[tuple[float, float, float, float], ...]:
        """Update the dashboard artists; return the (x_lo, x_hi, y_lo, y_hi) limits of the time series."""
        rows = self.history()
        stepped = self._count > 1
        split = np.nan_to_num(self._split.reshape(-1), nan=0.0)  # before the first step: empty bars
        for ue_bar, sensor_bar, text, share in zip(
            self._split_ue.patches, self._split_sensor.patches, self._split_text, split, strict=True
        ):
            ue_bar.set_height(share)
            sensor_bar.set_y(share)
            sensor_bar.set_height(1.0 - share if stepped else 0.0)
            text.set_text(f"{share:.2f}" if stepped else "")
            text.set_y(max(share / 2, 0.06))
        t = rows[:, H_T]
        for line, (column, *_) in zip(self._queue_lines, _QUEUE_SERIES, strict=True):
            line.set_data(t, rows[:, column])
        self._aori_line.set_data(t, rows[:, H_AORI])
        self._aosi_line.set_data(t, rows[:, H_AOSI])
        self._reward_line.set_data(t, rows[:, H_REWARD])
        x_lo, x_hi = self._time_window(float(t[-1]) if len(t) else 0.0)
        queues = rows[:, H_UE_UPLINK : H_SENSOR_MEC + 1]
        queue_top = _nice_ceiling(np.nanmax(queues, initial=0.0) * 1.1, 10.0)
        ages = rows[:, H_AORI : H_AOSI + 1]
        age_top = _nice_ceiling(max(self.sim.params.late_threshold + 1.0, np.nanmax(ages, initial=0.0) * 1.1), 1.0)
        rewards = rows[:, H_REWARD]
        reward_top = _nice_ceiling(np.nanmax(rewards, initial=0.0) * 1.1, 10.0)
        lowest = np.nanmin(rewards, initial=0.0)
        reward_bottom = -_nice_ceiling(-lowest * 1.1, 1.0) if lowest < 0 else -0.05 * reward_top
        return (
            (x_lo, x_hi, 0.0, queue_top),
            (x_lo, x_hi, 0.0, age_top),
            (x_lo, x_hi, reward_bottom, reward_top),
        )

    def _time_window(self, t_last: float) -> tuple[float, float]:
        """The x range of the time series.

        The whole episode if the history holds it, else a window that jumps by a quarter of
        its width (so the panels are redrawn only then).
        """
        size = len(self._hist)
        steps = int(self.sim.params.steps)
        if steps <= size:
            return 0.0, float(max(steps, 1))
        chunk = max(size // 4, 1)
        x_hi = float(max(size, -(-int(t_last) // chunk) * chunk))
        return x_hi - size, x_hi


def _set_limits(axis: Any, limits: tuple[float, float, float, float]) -> None:
    x_lo, x_hi, y_lo, y_hi = limits
    axis.set_xlim(x_lo, x_hi)
    axis.set_ylim(y_lo, y_hi)


def _interactive_pyplot() -> Any:
    """Return pyplot with an interactive backend, or RenderError saying how to get one."""
    if not _display_available():
        raise RenderError(
            "render_mode='human' needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set: run in a "
            "desktop session, set DISPLAY (X forwarding, or wrap the command in xvfb-run), or use "
            "render_mode='rgb_array' (frames as arrays; `metalore render --out episode.gif` writes a video)"
        )
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.backends import BackendFilter, backend_registry

    interactive = set(backend_registry.list_builtin(BackendFilter.INTERACTIVE))
    if matplotlib.get_backend().lower() in {name.lower() for name in interactive}:
        return plt
    for candidate in ("macosx", "qtagg", "gtk4agg", "gtk3agg", "tkagg", "wxagg"):
        try:
            plt.switch_backend(candidate)
        except (ImportError, RuntimeError):
            continue
        return plt
    raise RenderError(
        f"render_mode='human' needs an interactive matplotlib backend, but only {matplotlib.get_backend()!r} "
        "works here: install a GUI toolkit (e.g. `pip install pyqt6`, or your system's python3-tk), unset "
        "MPLBACKEND if it is set to Agg, or use render_mode='rgb_array'"
    )


class RenderMixin:
    """Rendering for an env that holds ``self.sim`` and ``self.render_mode`` (mixed into MetaLoreEnv).

    The env calls :meth:`_record_render` at the end of ``reset`` (``split=None``) and ``step``
    only when ``render_mode`` is not None, so an env without rendering does no extra work.
    ``human`` mode opens its window at the first ``step`` (or ``render()``), which is also where
    a missing display is reported: creating and resetting the env work anywhere (as
    Gymnasium's ``check_env`` requires for every declared mode).
    """

    metadata: dict[str, Any]
    render_mode: str | None
    sim: Any
    _renderer: Renderer | None = None

    def _init_renderer(self) -> None:
        """Create the renderer (cheap: the figure is built at the first frame); fails early without matplotlib."""
        assert self.render_mode is not None
        self._renderer = Renderer(self.sim, self.render_mode, fps=int(self.metadata.get("render_fps", 4)))

    def _record_render(self, split: np.ndarray | None) -> None:
        """Record the step for the dashboard; in ``human`` mode also redraw the window."""
        if self._renderer is None:  # closed, then used again
            self._init_renderer()
        assert self._renderer is not None
        self._renderer.record(split)
        if self.render_mode == "human" and split is not None:  # Gymnasium: human mode draws during step()
            self._renderer.show()

    def render(self) -> np.ndarray | None:
        """The current frame as an RGB uint8 array (``rgb_array``); draws the window and returns None (``human``)."""
        if self.render_mode is None:
            return None
        if self._renderer is None:
            self._init_renderer()
        assert self._renderer is not None
        if self.render_mode == "human":
            self._renderer.show()
            return None
        return self._renderer.frame()

    def close(self) -> None:
        """Close the render window, if any."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        super().close()  # type: ignore[misc]
