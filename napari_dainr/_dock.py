"""Notice when the dock that holds a widget is closed, hidden, removed, or shown again.

napari wraps a plugin widget in a ``QDockWidget``: its title bar's hide button and the
Window menu *close* that dock (the widget itself gets no close event), and its close
button removes the widget from it. A dock that is only tabbed behind another one is
neither, so a fit keeps running while the user looks at the ROI curves.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QDockWidget, QWidget


class DockWatcher(QObject):
    """Calls ``on_close`` when ``widget``'s dock closes or lets go of it, ``on_open`` on show."""

    def __init__(self, widget: QWidget, on_close: Callable[[], None], on_open: Callable[[], None]):
        super().__init__(widget)
        self.widget, self.on_close, self.on_open = widget, on_close, on_open
        self.dock: QDockWidget | None = None
        widget.installEventFilter(self)
        self._find_dock()

    def _find_dock(self) -> None:
        p = self.widget.parentWidget()
        while p is not None and not isinstance(p, QDockWidget):
            p = p.parentWidget()
        if p is self.dock:
            return
        if self.dock is not None:
            self.dock.removeEventFilter(self)
        self.dock = p
        if p is not None:
            p.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        kind = event.type()
        if obj is self.widget:
            if kind == QEvent.Type.ParentChange:
                self._find_dock()
                if self.widget.parentWidget() is None:  # taken out of its dock
                    self.on_close()
            elif kind == QEvent.Type.Close:
                self.on_close()
        elif obj is self.dock:
            if kind == QEvent.Type.Close:
                self.on_close()
            elif kind in (QEvent.Type.Show, QEvent.Type.ShowToParent):  # shown again
                self.on_open()
        return False
