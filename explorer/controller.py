"""The controller: the one way in for the window, the command line, remote control and scripts.

It owns the session state, its undo history, the render worker and the recorder, and offers typed commands:

    controller = Controller()                     # no GUI: runs headless in tests and scripts
    controller.open_network("ffhq.pkl")            # one undo step; the worker loads in the background
    controller.set("truncation", "psi", 0.7)       # checked by the state (StateError), one undo step per drag
    controller.edit(session.mixing.apply_preset, "fine", 0)   # a section method as one undo step
    frame = controller.tick(dt)                    # per frame: loads, results, the newest request; a new Frame or None
    controller.screenshot(); controller.save_session(); controller.start_recording(); controller.undo()

What it reports is typed (`Status`: the network's description, the newest LayerStats and timings, errors, the
capture and recording state), never text that a reader parses back; listeners hear `on_status(old, new)` only
when something in it changed.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from . import export
from .description import NetworkDescription
from .history import History, Step
from .recent import read_recent_files, with_recent, write_recent_files
from .render import LayerStats, RenderResult, RenderTimings, preview_dtype, render
from .state import Session, StateChange, StateError, network_named_in
from .view import compose_view
from .worker import LoadResult, RenderWorker


@dataclass(frozen=True)
class DisplayFigures:
    """How fast the window shows frames (reported by the app, shown by the Performance panel)."""
    panel_fps: float = 0.0
    viewer_fps: float = 0.0
    upload_ms: float = 0.0
    draws_per_s: float = 0.0        # frames the viewer drew (at most its frame-rate limit)


@dataclass(frozen=True)
class AnalysisProgress:
    """A background analysis (droplets over a seed set, directions, a region's channels) and how far it is."""
    name: str
    done: int = 0
    total: int = 0


@dataclass(frozen=True)
class Status:
    """What the controller reports: every field typed, replaced as a whole when anything changes."""
    network: NetworkDescription | None = None     # the network on screen
    loading: str | None = None                    # a path being loaded
    load_error: str | None = None                 # why the last load (or session file) failed
    render_error: str | None = None               # why the newest render failed (the last good frame stays)
    timings: RenderTimings | None = None
    layer_stats: LayerStats | None = None
    capture_message: str = ""                     # what the last screenshot / save / recording did
    recording: export.RecordingStatus | None = None
    recent_files: tuple[str, ...] = ()
    undo_label: str | None = None                 # what undo would take back (None: nothing)
    redo_label: str | None = None
    display: DisplayFigures = DisplayFigures()
    tier: str = "exact"                           # the frame on screen: 'exact' (float32 or the chosen dtype)
                                                  # or 'preview <dtype>' (adaptive mode while a control moves)
    analysis: AnalysisProgress | None = None      # the analysis running in the background
    analysis_error: str | None = None
    droplets: object | None = None                # explorer.analysis.droplets.DropletReport
    direction_set: object | None = None           # explorer.analysis.directions.DirectionSet
    region: object | None = None                  # explorer.analysis.regions.RegionRanking
    projection: object | None = None              # explorer.projection.ProjectionProgress: the newest step


@dataclass(frozen=True)
class Frame:
    """A new rendered frame: the result and the view the viewer shows (output plus layer grid)."""
    result: RenderResult
    view: np.ndarray


# Adaptive mode: while a control moved less than REST_S ago, frames come from the preview tier; once it rests,
# the exact frame replaces the preview. Only for networks whose exact frame takes longer than FRAME_BUDGET_S.
REST_S = 0.25
FRAME_BUDGET_S = 1 / 30
# The preview tier stays on only while its full frames take at most this share of an exact one: on some CPUs the
# preview type is slower for some networks (AMD's Zen 4, AVX-512 BF16 without AMX: StyleGAN3-T in bfloat16 took
# 1.59 s against 1.36 s exact), and a moving control then gets the faster, exact frames.
PREVIEW_MAX_SHARE = 0.9
MARKED_FINDINGS = 32     # the droplet findings marked on the layer view, best first
PROJECTION_VIDEO_FPS = 30


VIEW_ONLY = ("viewer", "capture")   # sections that never change the pixels


class Controller:
    def __init__(self, session: Session | None = None, worker: RenderWorker | None = None,
                 remember_recent: bool = True):
        self.session = session or Session()
        self.history = History(self.session)
        # A finished render or load wakes a frame loop that waits on `wakeup`, so a frame is shown as soon as it
        # exists rather than at the loop's next tick.
        self.wakeup = threading.Event()
        self.submitted_in_tick = False      # the last tick handed a new request to the worker
        self.worker = worker or RenderWorker(on_result=lambda _: self.wakeup.set(),
                                             on_load=lambda _: self.wakeup.set())
        self.remember_recent = remember_recent
        self.status = Status(recent_files=read_recent_files() if remember_recent else ())
        self.frame: Frame | None = None          # the newest good frame
        self.frames_shown = 0
        self.last_finished = None                # the request of the newest result, good or failed
        self.recorder = None
        self._listeners: list[Callable[[Status, Status], None]] = []
        self._dirty = True
        self._loaded_path: str | None = None
        self._load_step: Step | None = None      # the undo step that asked for the load in flight
        self._restore: dict | None = None        # a whole session to apply once the load in flight finishes
        self._pending_state: str | None = None   # a session file to apply once the load finishes
        self._posted: queue.SimpleQueue = queue.SimpleQueue()
        self.adaptive_threshold_s = FRAME_BUDGET_S
        self._last_edit = 0.0                    # when a control last changed what the image shows
        self._exact_s: float | None = None       # how long the last exact frame took
        self._preview_s: float | None = None     # how long the last preview frame took (same network)
        self._analysis: threading.Thread | None = None
        self._new_view = False                   # the view of the frame on screen was drawn again
        self._cancel = threading.Event()
        self.session.events.connect(self._on_change)

    # -- listeners ------------------------------------------------------------------------------------------------

    def connect(self, on_status: Callable[[Status, Status], None]) -> None:
        self._listeners.append(on_status)

    def _report(self, **changes) -> None:
        old = self.status
        new = replace(old, **changes)
        if new == old:
            return
        self.status = new
        for listener in list(self._listeners):
            listener(old, new)

    def _report_history(self) -> None:
        done, undone = self.history.done, self.history.undone
        self._report(undo_label=done[-1].label if done else None, redo_label=undone[-1].label if undone else None)

    # -- editing the session ---------------------------------------------------------------------------------------

    def set(self, section: str, field: str, value) -> None:
        """One setting, checked by the state (StateError names the field and what it allows). Repeated changes
        of one setting in quick succession (a slider drag) are one undo step."""
        with self.history.step((section, field)):
            setattr(self.session.section(section), field, value)
        self._report_history()

    def edit(self, method: Callable, *args, key=None):
        """Calls a section method (set_seed, apply_preset, ...) as one undo step; returns what it returns.
        key: calls with the same key in quick succession (a drag) make one step; without one, every call is a
        step of its own (a click)."""
        with self.history.step(key, merge=key is not None):
            result = method(*args)
        self._report_history()
        return result

    def undo(self) -> bool:
        step = self.history.undo()
        if step is not None and step.changes_network and step.before is not None:
            self._restore = step.before
        self._report_history()
        return step is not None

    def redo(self) -> bool:
        step = self.history.redo()
        if step is not None and step.changes_network and step.after is not None:
            self._restore = step.after
        self._report_history()
        return step is not None

    def advance(self, dt: float) -> None:
        """Animation: moves the latent without making undo steps."""
        with self.history.paused():
            self.session.advance(dt)

    # -- networks -------------------------------------------------------------------------------------------------

    def open_network(self, path: str) -> None:
        """Opens a network file in the background; one undo step (the history of edits is kept). A file that fails
        to load leaves the previous network on screen, and Status.load_error says why."""
        self.set("network", "path", str(path))

    def reload(self) -> None:
        if self._loaded_path:
            self._start_load(self._loaded_path)

    def open_session(self, path: str, network: str | None = None) -> bool:
        """Takes every setting of a session file (JSON, or a screenshot PNG); a file that is unreadable or does not
        fit changes nothing and Status.load_error says why. A file that names another network opens it first;
        `network` (a file the user named) wins over the one the session names."""
        try:
            text = export.read_state_file(path)
        except export.ExportError as error:
            self._report(load_error=f"session file: {error}")
            return False
        wanted = network or network_named_in(text)
        if wanted and wanted != self._loaded_path:
            self._pending_state = text
            self.open_network(wanted)
            return True
        return self._apply_state(text)

    def _apply_state(self, text: str) -> bool:
        try:
            with self.history.step(("session-file", time.monotonic()), merge=False):
                self.session.load_json(text, keep_network=True)
        except (StateError, ValueError) as error:
            self._report(load_error=f"session file: {error}")
            return False
        self._report(load_error=None)
        self._report_history()
        return True

    def _remark(self) -> None:
        """Draws the current frame's view again (the spike marks changed, nothing to render)."""
        if self.frame is not None:
            self.frame = Frame(self.frame.result, compose_view(self.frame.result, self._spikes(self.frame.result)))
            self._new_view = True

    def _on_change(self, change: StateChange) -> None:
        if change.section == "layers" and change.field == "mark_spikes":
            self._remark()
            return
        if change.section == "network" and change.field == "path" and change.new and change.new != self._loaded_path:
            self._load_step = self.history._open
            self._start_load(change.new)
        if change.section not in VIEW_ONLY:
            self._last_edit = time.monotonic()
        self._dirty = True

    def _start_load(self, path: str) -> None:
        self._report(loading=path)
        self.worker.load(path, self.session.performance.device)

    def _finish_load(self, load: LoadResult) -> None:
        step, self._load_step = self._load_step, None
        if load.error:
            # The previous network stays on screen; the path shown goes back to it, and the step that asked is gone.
            self._report(loading=None, load_error=f"{load.path}: {load.error}")
            self._pending_state = None
            if step is not None and step in self.history.done:
                self.history.done.remove(step)
            with self.history.paused():
                self.session.restore("network", "path", self._loaded_path)
            self._restore = None
            self._report_history()
            return
        self._loaded_path = load.path
        self._exact_s = self._preview_s = None   # a new network: its frames' costs are measured again
        recent = with_recent(self.status.recent_files, load.path) if load.path else self.status.recent_files
        if self.remember_recent and recent != self.status.recent_files:
            write_recent_files(recent)
        with (self.history.extend(step) if step is not None else self.history.paused()):
            self.session.set_facts(load.facts)
            if self._restore is not None:
                self._restore_session(self._restore)
        self._restore = None
        if step is not None:
            step.after = self.session.to_dict()
        # A droplet report names another network's layers and channels: its ablations must not reach this one.
        self._report(network=load.description, loading=None, load_error=None, recent_files=recent, droplets=None)
        if self._pending_state is not None:
            text, self._pending_state = self._pending_state, None
            self._apply_state(text)
        self._dirty = True

    def _restore_session(self, data: dict) -> None:
        try:
            self.session.assign(Session.from_dict(data, facts=self.session.facts))
        except StateError as error:
            self._report(load_error=f"undo: {error}")

    # -- other threads --------------------------------------------------------------------------------------------

    def post(self, command: Callable[[], object]) -> None:
        """Runs `command` (a call of this controller's commands) on the controller's thread at the start of the
        next tick: how OSC, MIDI and audio threads reach the state, which is not thread-safe. Wakes the frame
        loop, so the new request is submitted within about a millisecond instead of the next frame."""
        self._posted.put(command)
        self.wakeup.set()

    def _run_posted(self) -> None:
        while True:
            try:
                command = self._posted.get_nowait()
            except queue.Empty:
                return
            try:
                command()
            except (StateError, ValueError, KeyError, IndexError, TypeError) as error:
                # A remote value the state refuses changes nothing; the reason goes where errors are shown.
                self._report(capture_message=f"refused: {error}")

    # -- the frame loop -------------------------------------------------------------------------------------------

    @property
    def network_key(self) -> str | None:
        return self.worker.network_key

    @property
    def loaded_path(self) -> str | None:
        """The file of the network on screen (None before the first load)."""
        return self._loaded_path

    @property
    def exact_render_s(self) -> float | None:
        """What the last full exact synthesis took (None before the first): what a frame of this network costs."""
        return self._exact_s

    def tick(self, dt: float = 0.0) -> Frame | None:
        """One frame of the caller's loop: applies finished loads, submits the newest request, takes the newest
        result. Returns the new Frame, or None when nothing new was rendered."""
        self.wakeup.clear()
        self.submitted_in_tick = False
        self._run_posted()
        load = self.worker.poll_load()
        while load is not None:
            self._finish_load(load)
            load = self.worker.poll_load()
        if dt:
            self.advance(dt)
        if self.network_key is not None and self.status.loading is None:
            preview = self._preview_dtype()
            moving = time.monotonic() - self._last_edit < REST_S
            if self._dirty:
                self._dirty = False
                self.worker.submit(self.preview_request(preview) if preview and moving else self.request())
                self.submitted_in_tick = True
            elif (not moving and not self.worker.busy and self.frame is not None
                  and self.frame.result.request.dtype != self.session.performance.dtype
                  and self.last_finished != self.request()):
                # The control rests and a preview is on screen: the exact frame replaces it. (Checked by dtype
                # first, so an idle window does not build a request every frame.)
                self.worker.submit(self.request())
                self.submitted_in_tick = True
        frame = self._take_result()
        if frame is None and self._new_view:
            frame = self.frame
        self._new_view = False
        return frame

    def request(self):
        """The exact request of the current state."""
        return self.session.render_request(self.network_key or "")

    def preview_request(self, dtype: str):
        from dataclasses import replace as replaced
        return replaced(self.request(), dtype=dtype)

    @property
    def preview_precision(self) -> str | None:
        """The adaptive mode's preview precision on the chosen device: bfloat16 on a CPU with bfloat16 units,
        float16 on CUDA, None where there is none (a CPU with AVX2 only: every frame is exact)."""
        return preview_dtype(self.session.performance.device)

    @property
    def compiled_kernels(self) -> str:
        """Whether the CPU runs the compiled kernels (kernels/native) in this process, or why not."""
        from kernels import native
        return native.status()

    def _preview_dtype(self) -> str | None:
        """The preview tier's dtype when adaptive mode is on and pays: float32 chosen, a fast dtype on the device,
        an exact frame slower than a display frame, and no recording (recordings take exact frames)."""
        p = self.session.performance
        if not p.adaptive or p.dtype != "float32" or self.recorder is not None:
            return None
        if self._exact_s is None or self._exact_s <= self.adaptive_threshold_s:
            return None
        if self._preview_s is not None and self._preview_s > PREVIEW_MAX_SHARE * self._exact_s:
            return None
        return self.preview_precision

    def _take_result(self) -> Frame | None:
        result = self.worker.poll()
        if result is None:
            return None
        self.last_finished = result.request
        if not result.ok:
            self._report(render_error=result.error)
            return None
        self.frame = Frame(result, compose_view(result, self._spikes(result)))
        self.frames_shown += 1
        exact = result.request.dtype == self.session.performance.dtype
        if result.timings.layers_run == result.timings.layers_total:
            # A full synthesis: what a frame of each tier costs.
            if exact:
                self._exact_s = result.timings.total_s
            else:
                self._preview_s = result.timings.total_s
        self._report(render_error=None, timings=result.timings, layer_stats=result.stats,
                     tier="exact" if exact else f"preview {result.request.dtype}")
        if self.recorder is not None:
            self._record(self.frame)
        return self.frame

    def _spikes(self, result: RenderResult) -> tuple:
        """(channel, y, x) of the droplet findings in the viewed layer, when the layer view marks them."""
        report, layer = self.status.droplets, result.request.view.layer
        if report is None or layer is None or not self.session.layers.mark_spikes:
            return ()
        # A finding's place is where its strongest spike was, on its best seed: marked on that seed's image only.
        shown = result.request.seed_weights
        seed = shown[0][0] if len(shown) == 1 and result.request.main_w_plus is None else None
        return tuple((f.channel, f.y, f.x) for f in report.findings[:MARKED_FINDINGS]
                     if f.layer == layer and f.best_seed == seed)

    def settled(self) -> bool:
        """True when the newest state has been rendered (or has failed) and nothing is pending."""
        if self._dirty or self.worker.busy or self.network_key is None or self.status.loading is not None:
            return False
        return self.last_finished == self.request()

    def wait_for_frame(self, timeout: float = 120.0, poll_s: float = 0.005) -> bool:
        """For scripts and tests: ticks until the current state is on screen (True) or failed / timed out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.tick()
            if self.settled():
                return self.frame is not None and self.frame.result.request == self.last_finished
            if self.status.load_error and self._loaded_path is None and self.status.loading is None:
                return False
            time.sleep(poll_s)
        return False

    def report_display(self, figures: DisplayFigures) -> None:
        self._report(display=figures)

    # -- capture --------------------------------------------------------------------------------------------------

    def _exact_frame(self) -> Frame | None:
        """The frame on screen, or, when that is a preview, the exact frame of the same state (rendered here)."""
        frame = self.frame
        if frame is None or frame.result.request.dtype == self.session.performance.dtype:
            return frame
        generator = self.worker.generator
        exact = replace(frame.result.request, dtype=self.session.performance.dtype)
        result = render(generator, exact) if generator is not None else None
        return Frame(result, compose_view(result)) if result is not None and result.ok else frame

    def _captured_image(self) -> np.ndarray | None:
        frame = self._exact_frame()
        if frame is None:
            return None
        self._captured = frame
        return frame.result.image if self.session.capture.source == "output" else frame.view

    def screenshot(self) -> Path | None:
        """The output (or the view) as the next free shot-NNNN.png in the capture folder, with the session inside."""
        image = self._captured_image()
        if image is None:
            self._report(capture_message="nothing rendered yet")
            return None
        try:
            path = export.save_screenshot(image, self.session.capture.folder, state_json=self.session.to_json())
        except export.ExportError as error:
            self._report(capture_message=f"screenshot failed: {error}")
            return None
        line = export.reproduce_command(self._captured.result.request, self._loaded_path or "NETWORK",
                                        state_file=str(path), facts=self.session.facts)
        self._report(capture_message=f"saved {path}\nreproduce: {line.command}")
        return path

    def save_latents(self) -> Path | None:
        """The W+ of the image on screen ([num_ws, w_dim]) as the next free latents-NNNN.npy."""
        if self.frame is None or self.frame.result.ws is None:
            self._report(capture_message="nothing rendered yet")
            return None
        try:
            path = export.save_latents(self.frame.result.ws, self.session.capture.folder)
        except export.ExportError as error:
            self._report(capture_message=f"saving W+ failed: {error}")
            return None
        self._report(capture_message=f"saved W+ {path}")
        return path

    def save_session(self) -> Path | None:
        try:
            path = export.save_session(self.session.to_json(), self.session.capture.folder)
        except export.ExportError as error:
            self._report(capture_message=f"saving the session failed: {error}")
            return None
        self._report(capture_message=f"saved session {path}")
        return path

    @property
    def recording(self) -> bool:
        return self.recorder is not None

    def start_recording(self) -> bool:
        """Records every new frame on a background thread, so the frame loop never waits for the encoder."""
        if self.recorder is not None:
            return True
        capture = self.session.capture
        try:
            self.recorder = export.open_recorder(capture.format, folder=capture.folder, fps=capture.fps,
                                                 background=True)
        except export.ExportError as error:
            self._report(capture_message=f"recording failed: {error}")
            return False
        self._report(capture_message=f"recording to {self.recorder.path}", recording=self.recorder.status())
        return True

    def _record(self, frame: Frame) -> None:
        image = frame.result.image if self.session.capture.source == "output" else frame.view
        if not self.recorder.write(image):
            self.stop_recording()
            return
        self._report(recording=self.recorder.status())

    def stop_recording(self) -> None:
        if self.recorder is None:
            return
        recorder, self.recorder = self.recorder, None
        recorder.close()
        status = recorder.status()
        self._report(recording=None, capture_message=recorder.progress if not status.error
                     else f"recording failed: {status.error}")

    # -- analyses in the background ------------------------------------------------------------------------------

    def _start_analysis(self, name: str, work: Callable, on_done: Callable, total: int = 0) -> bool:
        """Runs work(generator, progress) on its own thread beside the renders (the network is only read);
        progress(done, total) reports and returns False once cancelled. on_done(value) runs on the controller's
        thread. One analysis at a time."""
        generator = self.worker.generator
        if generator is None:
            self._report(analysis_error="no network is loaded")
            return False
        if self._analysis is not None and self._analysis.is_alive():
            self._report(analysis_error=f"{self.status.analysis.name} is still running; cancel it first")
            return False
        self._cancel.clear()
        self._report(analysis=AnalysisProgress(name, 0, total), analysis_error=None)

        def progress(done: int, count: int) -> bool:
            self.post(lambda: self._report(analysis=AnalysisProgress(name, done, count)))
            return not self._cancel.is_set()

        def run() -> None:
            import torch
            try:
                with torch.no_grad():
                    value = work(generator, progress)
            except Exception as error:   # noqa: BLE001 - every failure is reported as a value
                message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                self.post(lambda: self._report(analysis=None, analysis_error=f"{name}: {message}"))
                return
            self.post(lambda: (self._report(analysis=None), on_done(value)))

        self._analysis = threading.Thread(target=run, name=f"analysis-{name}", daemon=True)
        self._analysis.start()
        return True

    def cancel_analysis(self) -> None:
        self._cancel.set()

    def wait_for_analysis(self, timeout: float = 120.0) -> bool:
        """For scripts and tests: ticks until the running analysis has reported (True) or timed out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.tick()
            if self.status.analysis is None and (self._analysis is None or not self._analysis.is_alive()):
                self.tick()
                return True
            time.sleep(0.01)
        return False

    def detect_droplets(self, seeds=None) -> bool:
        """The droplet detector over a seed set (default: the 16 seeds from the current one), with the session's
        truncation, noise mode and bending (so that a detection after an ablation shows what the ablation did);
        Status.droplets gets the DropletReport."""
        from .analysis.droplets import detect_droplets
        from .bending import layer_edits
        s = self.session
        seeds = list(seeds) if seeds is not None else [(s.latent.seed + k) % (2 ** 32) for k in range(16)]
        psi, cutoff, noise = s.truncation.psi, s.truncation.cutoff, s.noise.mode
        edits = layer_edits(s.bending.operations)
        return self._start_analysis(
            "droplets", lambda G, progress: detect_droplets(G, seeds, psi=psi, cutoff=cutoff, noise_mode=noise,
                                                            progress=progress, layer_edits=edits),
            lambda report: (self._report(droplets=report), self._remark()), total=len(seeds))

    def ablate_top_droplets(self, count: int = 3) -> int:
        """Zeroes the channels of the `count` best-ranked droplet findings (one undo step); returns how many."""
        from .bending import top_droplet_ablations
        report = self._droplet_report()
        # Ranked best first, spiking or not: the top asked for.
        return self._add_ablations("ablate-droplets", top_droplet_ablations(report, count)) if report else 0

    def ablate_droplet_spots(self) -> int:
        """Zeroes the channels that spike at the widest shared spot of each layer with a droplet on some seed of
        the last detection (one undo step); returns how many channels, 0 (with a message) when no layer has one."""
        from .analysis.droplets import SHARED_SPOT_SHARE
        from .bending import shared_spot_ablations
        report = self._droplet_report()
        if report is None:
            return 0
        operations = shared_spot_ablations(report)
        if not operations:
            self._report(analysis_error=f"no layer has {SHARED_SPOT_SHARE:.0%} of its channels spiking at one spot "
                                        f"on any of the seeds: no droplet to ablate")
            return 0
        return self._add_ablations("ablate-droplet-spots", operations)

    def _droplet_report(self):
        """The last droplet report with findings, or None after saying that the detector has to run first."""
        report = self.status.droplets
        if report is None or not report.findings:
            self._report(analysis_error="no droplet findings yet: run the detector first")
            return None
        return report

    def _add_ablations(self, label: str, operations) -> int:
        """Appends the ablation operations the session's bending lacks, as one undo step; returns how many
        channels (0, with a message, when every one is there already)."""
        existing = self.session.bending.operations
        operations = tuple(op for op in operations if op not in existing)
        if not operations:
            self._report(analysis_error="those channels are ablated already")
            return 0
        with self.history.step((label, time.monotonic()), merge=False):
            self.session.bending.operations = existing + operations
        self._report_history()
        return sum(len(op.channels) for op in operations)

    def compute_directions(self, method: str = "sefa", count: int = 10, layers=None) -> bool:
        """GANSpace PCA or SeFa directions of the loaded network; they are offered in the Directions section at
        strength 0 (one undo step) and Status.direction_set holds the set."""
        from .analysis import directions as found
        if method not in ("pca", "sefa"):
            self._report(analysis_error=f"unknown direction method {method!r}; methods: pca, sefa")
            return False

        def work(G, progress):
            progress(0, 1)
            made = found.pca_directions(G, count) if method == "pca" else found.sefa_directions(G, count, layers)
            progress(1, 1)
            return made
        return self._start_analysis(f"{method} directions", work, self._offer_directions, total=1)

    def _offer_directions(self, direction_set) -> None:
        self._report(direction_set=direction_set)
        start, stop = (self.session.directions.offsets[0].w_start, self.session.directions.offsets[0].w_stop) \
            if self.session.directions.offsets else (0, None)
        with self.history.step(("directions", time.monotonic()), merge=False):
            self.session.directions.set_directions(zip(direction_set.names, direction_set.directions), start, stop)
        self._report_history()

    def load_directions(self, path: str) -> bool:
        """A saved direction set (.npz made for this network), or an InterFaceGAN boundary (.npy)."""
        from .analysis import directions as found
        generator = self.worker.generator
        if generator is None:
            self._report(analysis_error="no network is loaded")
            return False
        try:
            if str(path).lower().endswith(".npy"):
                loaded = found.boundary_set([path], generator.w_dim, found.network_hash(generator))
            else:
                loaded = found.load_direction_set(path, expected_hash=found.network_hash(generator))
        except (found.DirectionError, OSError, ValueError) as error:
            self._report(analysis_error=f"{path}: {error}")
            return False
        self._offer_directions(loaded)
        return True

    def save_directions(self) -> Path | None:
        from .analysis import directions as found
        if self.status.direction_set is None:
            self._report(analysis_error="no directions to save: compute or load some first")
            return None
        try:
            path = export.reserve_path(self.session.capture.folder, "directions", ".npz")
            path.unlink()
            saved = found.save_direction_set(self.status.direction_set, path)
        except (export.ExportError, found.DirectionError, OSError) as error:
            self._report(analysis_error=f"saving the directions failed: {error}")
            return None
        self._report(capture_message=f"saved directions {saved}")
        return saved

    def rank_region(self, top: int, left: int, bottom: int, right: int) -> bool:
        """The style channels that change the pixels inside a rectangle of the output more than outside it
        (Status.region); the panel offers the best as sliders of the style-channel editor."""
        import torch

        from .analysis.regions import Rectangle, rank_region_channels
        if self.frame is None:
            self._report(analysis_error="nothing rendered yet")
            return False
        rectangle = Rectangle(int(top), int(left), int(bottom), int(right))
        ws = torch.from_numpy(self.frame.result.ws)[None]
        noise = "none" if self.session.noise.mode == "none" else "const"
        return self._start_analysis(
            "region", lambda G, progress: rank_region_channels(G, ws.to(G.mapping.w_avg.device), rectangle,
                                                               noise_mode=noise),
            lambda ranking: self._report(region=ranking), total=1)

    def open_latents(self, path: str) -> bool:
        """A W+ .npy ([num_ws, w_dim], as Save W+ and `project` write) as the main latent (one undo step)."""
        try:
            ws = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            self._report(load_error=f"{path}: not a W+ .npy file ({error})")
            return False
        ws = ws.reshape(ws.shape[-2:]) if ws.ndim == 3 and ws.shape[0] == 1 else ws
        try:
            self.edit(self.session.latent.use_w_plus, ws if ws.ndim == 2 else np.zeros((0, 0)))
        except StateError as error:
            self._report(load_error=f"{path}: {error}")
            return False
        self._report(load_error=None)
        return True

    def project(self, target: str, steps: int = 300, w_plus: bool = False, optimize_noise: bool = False,
                vgg16: str | None = None, use_discriminator: bool = True) -> bool:
        """Finds the latent whose image matches a photo (StyleGAN2 paper, section 5) in the background: every
        step's image in Status.projection, stoppable at any moment (cancel_analysis) with the best result kept.
        The result becomes the main latent (one undo step), and is saved in the capture folder as a W+ .npy and
        a video of the optimisation. The network file's own discriminator, when it has one, adds its features
        to the distance (use_discriminator)."""
        from . import projection
        generator = self.worker.generator
        if generator is None:
            self._report(analysis_error="no network is loaded")
            return False
        try:
            settings = projection.ProjectionSettings(steps=int(steps), w_plus=bool(w_plus),
                                                     optimize_noise=bool(optimize_noise))
            pixels = projection.load_target(target, generator.img_channels, *generator.img_shape)
            features = projection.load_vgg16(vgg16) if vgg16 else None
        except (projection.ProjectionError, ValueError) as error:
            self._report(analysis_error=f"project: {error}")
            return False
        discriminator = self.worker.discriminator if use_discriminator else None
        folder = self.session.capture.folder
        try:
            video = export.open_recorder("mp4", folder=folder, fps=PROJECTION_VIDEO_FPS, stem="projection",
                                         background=True)
        except export.ExportError:
            video = None          # the projection still runs; only its video is missing

        def work(G, progress):
            import torch

            def on_step(step):
                if video is not None:
                    video.write(np.concatenate([pixels, step.image], axis=1))
                self.post(lambda: self._report(projection=step))
                progress(step.step.step, step.steps)

            try:
                with torch.enable_grad():
                    return projection.project(G, pixels, settings, features, on_step=on_step,
                                              should_stop=self._cancel.is_set, discriminator=discriminator)
            finally:
                if video is not None:
                    video.close()

        def done(result) -> None:
            with self.history.step(("projection", time.monotonic()), merge=False):
                self.session.latent.use_w_plus(result.ws)
            self._report_history()
            try:
                path = export.save_latents(result.ws, folder, stem="projected")
                where = f"saved {path}" + (f" and {video.path}" if video is not None else "")
            except export.ExportError as error:
                where = f"not saved: {error}"
            self._report(capture_message=f"projection: best step {result.best_step}, PSNR {result.psnr:.1f} dB"
                                         f"{' (stopped)' if result.stopped else ''}; {where}")
        return self._start_analysis("projection", work, done, total=settings.steps)

    def toggle_recording(self) -> None:
        self.stop_recording() if self.recorder is not None else self.start_recording()

    def close(self) -> None:
        self._cancel.set()
        self.stop_recording()
        self.worker.shutdown()
