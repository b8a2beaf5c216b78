"""Undo and redo of every change to the session state.

A `History` listens to a session's changes and groups them into steps: everything inside `with
history.step(key)` is one step, and a step whose key equals the previous step's, made within `MERGE_S` seconds of
it, joins that step, so that a slider drag (dozens of changes of one field) is undone at once. View-only settings
(zoom, pan, fullscreen) are not recorded; changes made while `history.paused()` (animation, undo itself) are not
either.

Undoing a step puts back the old value of each field it changed, newest first; every intermediate state is one
the session held before, so no check can refuse it. A step that changed the network also holds the session as it
was before (the controller reloads that network and then restores it).
"""
from __future__ import annotations

import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Hashable, Iterator

from .state import Session, StateChange, to_jsonable

MAX_STEPS = 1000            # the issue asks for at least 200; a step is a few small tuples
MERGE_S = 0.75              # changes of one control closer than this are one step (a drag fires every frame)
NOT_RECORDED = ("viewer",)  # view-only sections: zoom and pan are not edits of the image


@dataclass
class Step:
    key: Hashable
    changes: list[StateChange] = field(default_factory=list)
    last_change: float = 0.0
    before: dict | None = None        # the whole session before a network change
    after: dict | None = None         # and after it (set when the load finished)

    @property
    def changes_network(self) -> bool:
        return any(c.section == "network" and c.field == "path" for c in self.changes)

    @property
    def label(self) -> str:
        fields = []
        for change in self.changes:
            name = f"{change.section}.{change.field}"
            if name not in fields:
                fields.append(name)
        return ", ".join(fields[:3]) + (" ..." if len(fields) > 3 else "")


class History:
    def __init__(self, session: Session, max_steps: int = MAX_STEPS, clock=time.monotonic):
        self.session = session
        self.clock = clock
        self.done: deque[Step] = deque(maxlen=max_steps)
        self.undone: list[Step] = []
        self._open: Step | None = None       # the step `step()` is recording into
        self._paused = 0
        session.events.connect(self._hear)

    # -- recording ------------------------------------------------------------------------------------------------

    @contextmanager
    def step(self, key: Hashable = None, merge: bool = True) -> Iterator[Step]:
        """Records every change inside as one step (nested calls join the outer step)."""
        if self._open is not None:
            yield self._open
            return
        now = self.clock()
        last = self.done[-1] if self.done else None
        if (merge and key is not None and last is not None and last.key == key and not self.undone
                and now - last.last_change < MERGE_S and not last.changes_network):
            step, fresh = last, False
        else:
            step, fresh = Step(key, last_change=now), True
        self._open = step
        try:
            yield step
        finally:
            self._open = None
            if fresh and step.changes:
                self.done.append(step)
                self.undone.clear()
            if step.changes:
                step.last_change = now

    def extend(self, step: Step) -> "contextmanager":
        """Records into an existing step (a network load finishing adds its repairs to the step that asked)."""
        @contextmanager
        def joined():
            outer, self._open = self._open, step
            try:
                yield step
            finally:
                self._open = outer
        return joined()

    @contextmanager
    def paused(self) -> Iterator[None]:
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1

    @property
    def is_paused(self) -> bool:
        """True while changes are not recorded (animation, undo and redo themselves): MIDI learn ignores them."""
        return self._paused > 0

    def _hear(self, change: StateChange) -> None:
        if self._paused or change.section in NOT_RECORDED:
            return
        if self._open is None:
            # A change outside any step (a listener's own follow-up, a drop on the viewer): a step of its own.
            with self.step((change.section, change.field)):
                self._record(change)
            return
        self._record(change)

    def _record(self, change: StateChange) -> None:
        step = self._open
        step.changes.append(change)
        if change.section == "network" and change.field == "path" and step.before is None:
            step.before = self._before(step)

    def _before(self, step: Step) -> dict:
        """The whole session as it was before `step`: today's, with the step's changes so far taken back. Made
        only for a step that changes the network, not on every change (a drag makes dozens a second)."""
        before = self.session.to_dict()
        for change in reversed(step.changes):
            before[change.section][change.field] = to_jsonable(change.old)
        return before

    # -- undo and redo --------------------------------------------------------------------------------------------

    @property
    def can_undo(self) -> bool:
        return bool(self.done)

    @property
    def can_redo(self) -> bool:
        return bool(self.undone)

    def undo(self) -> Step | None:
        """Puts back the values before the newest step; returns the step (None: nothing to undo)."""
        if not self.done:
            return None
        step = self.done.pop()
        with self.paused():
            for change in reversed(step.changes):
                self.session.restore(change.section, change.field, change.old)
        self.undone.append(step)
        return step

    def redo(self) -> Step | None:
        if not self.undone:
            return None
        step = self.undone.pop()
        with self.paused():
            for change in step.changes:
                self.session.restore(change.section, change.field, change.new)
        self.done.append(step)
        return step
