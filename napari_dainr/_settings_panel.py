"""The dock's fit settings: method, steps, device, seed, and the "Advanced settings" section.

The advanced section holds how the fit runs (live updates, density compensation,
checkpoints, resume) and the chosen method's own configuration form, rebuilt from the
engine's config dataclass whenever the method changes.
"""

from __future__ import annotations

import logging
from typing import Any

from magicgui.widgets import ComboBox, Container, FileEdit, FloatSpinBox, SpinBox
from qtpy.QtWidgets import QVBoxLayout, QWidget
from superqt import QCollapsible

from dainr.data import KSpaceData
from dainr.holdout import DEFAULT_PATIENCE
from dainr.loop import RunOptions
from dainr.methods import DEFAULT_METHOD, available_methods, get_method
from dainr.session import FitSpec

from ._config_form import build_form, default_steps, has_steps, read_overrides
from ._worker import FitRequest

log = logging.getLogger(__name__)

#: default seconds between live snapshots: each costs one full forward pass of the model
#: over all frames, so a few seconds keeps the overhead to a few percent of the fit.
LIVE_EVERY_S = 2.0


def _whole_number_box(label: str, lo: int, hi: int, value: int, at_minimum: str) -> FloatSpinBox:
    """A spin box of whole numbers that reads ``at_minimum`` at its minimum.

    A float box without decimals: magicgui's integer SpinBox is superqt's
    QLargeIntSpinBox, which shows no special-value text.
    """
    box = FloatSpinBox(label=label, min=lo, max=hi, step=1, value=value)
    box.native.setDecimals(0)
    box.native.setSpecialValueText(at_minimum)
    return box


class SettingsPanel(QWidget):
    """Method and run settings; :meth:`request` turns them into a :class:`FitRequest`."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        methods = available_methods()
        self.method_box = ComboBox(
            label="method",
            choices=methods,
            value=DEFAULT_METHOD if DEFAULT_METHOD in methods else methods[0],
        )
        # 0 shows as "method default": for methods that derive their step count (DA-INR's
        # follows the frame count)
        self.steps = _whole_number_box("steps", 0, 10_000_000, 1000, "method default")
        self.device = ComboBox(label="device", choices=["auto", "cpu", "cuda"], value="auto")
        self.device.tooltip = "auto: a CUDA GPU when there is one, else the CPU"
        self.seed = SpinBox(label="seed", min=0, max=2**31 - 1, value=0)
        self.form = Container(
            widgets=[self.method_box, self.steps, self.device, self.seed], labels=True
        )

        self.live_every = FloatSpinBox(
            label="live update every (s)", min=0.0, max=3600.0, step=0.5, value=LIVE_EVERY_S
        )
        self.live_every.tooltip = "Seconds between images streamed into the layer; 0 = every step"
        self.dcf = ComboBox(
            label="density compensation",
            choices=["auto", "ramp", "pipe-menon", "file"],
            value="auto",
        )
        self.dcf.tooltip = "auto: the file's /dcf when it has one, else the ramp"
        self.checkpoint = FileEdit(label="checkpoint", mode="w", filter="*.pt", nullable=True)
        self.checkpoint.tooltip = "Write a resumable checkpoint here (at the end of the fit)"
        self.checkpoint_every = _whole_number_box("checkpoint every", 0, 10_000_000, 0, "end only")
        self.checkpoint_every.tooltip = "Steps between checkpoints while the fit runs"
        self.resume = FileEdit(label="resume from", mode="r", filter="*.pt", nullable=True)
        self.resume.tooltip = "Continue a fit from a checkpoint (same method and settings)"
        # One step below 0 reads "method default" (today none for every method); 0 is off.
        self.holdout = FloatSpinBox(
            label="held-out spokes", min=-0.01, max=0.5, step=0.01, value=-0.01
        )
        self.holdout.native.setSpecialValueText("method default")
        self.holdout.tooltip = (
            "Fraction of the spokes kept out of training: their loss chooses the returned "
            "state and stops the fit early (iterative methods; 0 = off)"
        )
        self.early_stop = _whole_number_box(
            "early stop (evaluations)", 0, 1_000_000, DEFAULT_PATIENCE, "never"
        )
        self.early_stop.tooltip = "Held-out evaluations without a better loss before the fit stops"
        self.run_form = Container(
            widgets=[
                self.live_every,
                self.dcf,
                self.checkpoint,
                self.checkpoint_every,
                self.resume,
                self.holdout,
                self.early_stop,
            ],
            labels=True,
        )
        self.config_cls: type | None = None
        self.config_form = build_form(None)
        self.advanced = QCollapsible("Advanced settings")
        adv = QWidget()
        self._adv_layout = QVBoxLayout(adv)
        self._adv_layout.setContentsMargins(0, 0, 0, 0)
        self._adv_layout.addWidget(self.run_form.native)
        self._adv_layout.addWidget(self.config_form.native)
        self.advanced.addWidget(adv)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.form.native)
        lay.addWidget(self.advanced)
        self.method_box.changed.connect(self._on_method_changed)
        self._on_method_changed()

    def _on_method_changed(self, *_: Any) -> None:
        try:
            _, config_cls = get_method(self.method_box.value)
        except Exception as e:  # a method module that fails to import: say so, keep the UI
            log.warning("method %s unavailable: %s", self.method_box.value, e)
            config_cls = None
        self.config_cls = config_cls
        self.steps.enabled = has_steps(config_cls)
        self.steps.value = default_steps(config_cls) or 0
        self.steps.tooltip = (
            "optimisation steps" if has_steps(config_cls) else "this method runs in one pass"
        )
        new = build_form(config_cls)
        self._adv_layout.replaceWidget(self.config_form.native, new.native)
        self.config_form.native.deleteLater()
        self.config_form = new

    def set_enabled(self, enabled: bool) -> None:
        for w in (self.form, self.run_form, self.config_form):
            w.enabled = enabled
        if enabled:
            self.steps.enabled = has_steps(self.config_cls)

    def request(self, data: KSpaceData, spokes_per_frame: int) -> FitRequest:
        """The fit these settings describe (ValueError naming a setting that is unusable)."""
        overrides = read_overrides(self.config_form, self.config_cls)
        if has_steps(self.config_cls) and self.steps.value > 0:
            overrides["steps"] = int(self.steps.value)
        checkpoint = self.checkpoint.value
        every = int(self.checkpoint_every.value)
        if every and checkpoint is None:
            raise ValueError("checkpoint every: choose a checkpoint file first")
        resume = self.resume.value
        if resume is not None and not resume.is_file():
            raise ValueError(f"resume from: no checkpoint file {resume}")
        spec = FitSpec(
            method=self.method_box.value,
            overrides=overrides,
            spokes_per_frame=spokes_per_frame,
            dcf=self.dcf.value,
            device=self.device.value,
            seed=int(self.seed.value),
            # "method default" stays None: the engine then holds out what the method does
            holdout=None if self.holdout.value < 0 else float(self.holdout.value),
            early_stop=None
            if self.early_stop.value == DEFAULT_PATIENCE
            else int(self.early_stop.value),
        )
        run = RunOptions(
            snapshot_seconds=float(self.live_every.value),
            checkpoint=None if checkpoint is None else str(checkpoint),
            checkpoint_every=every or None,
            resume=None if resume is None else str(resume),
        )
        return FitRequest(data, spec, run)
