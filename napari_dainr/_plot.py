"""A small base for the docks' plots: one themed matplotlib axes; subclasses fill :meth:`draw`.

The pattern of napari-matplotlib: the base owns the figure, the canvas and napari's
theme; a subclass only says what to draw on :attr:`PlotCanvas.axes`. :meth:`refresh`
clears, restyles and calls :meth:`draw`, so a redraw never loses the theme's colours.
"""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QSizePolicy, QVBoxLayout, QWidget


def theme_colors(theme_name: str) -> dict[str, str]:
    """Figure colours from a napari theme: the dock's background, the theme's text colour."""
    from napari.utils.theme import get_theme

    t = get_theme(theme_name)
    return {
        "background": t.background.as_hex(),
        "axes": t.foreground.as_hex(),
        "text": t.text.as_hex(),
        "grid": t.primary.as_hex(),
    }


class PlotCanvas(QWidget):
    """One figure with one axes in napari's colours; subclasses implement :meth:`draw`."""

    def __init__(self, theme: str = "dark", height_px: int = 180, parent: QWidget | None = None):
        super().__init__(parent)
        # The figure size in inches is only the first guess; Qt resizes the canvas.
        self.figure = Figure(figsize=(4, height_px / 100), dpi=100, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(height_px)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.axes: Axes = self.figure.add_subplot(111)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.canvas)
        self.theme = theme
        self.colors = theme_colors(theme)
        self.apply_theme(theme)

    # ------------------------------------------------------------ for subclasses
    def draw(self) -> None:
        """Draw the data on :attr:`axes` (cleared and styled already); the base draws nothing."""

    # ------------------------------------------------------------ for users
    def refresh(self) -> None:
        """Clear, restyle, :meth:`draw`, and schedule the canvas repaint."""
        self.axes.clear()
        self._style_axes()
        self.draw()
        legend = self.axes.get_legend()
        if legend is not None:
            self._style_legend(legend)
        self.canvas.draw_idle()

    def apply_theme(self, theme: str) -> None:
        """Recolour for a napari theme name (``viewer.theme``) and redraw."""
        self.theme = theme
        self.colors = theme_colors(theme)
        self.figure.set_facecolor(self.colors["background"])
        self.refresh()

    def save_png(self, path: str, dpi: int = 150) -> None:
        """The figure as shown, on the theme's background."""
        self.figure.savefig(path, dpi=dpi, facecolor=self.figure.get_facecolor())

    # ------------------------------------------------------------ styling
    def _style_axes(self) -> None:
        c = self.colors
        ax = self.axes
        ax.set_facecolor(c["axes"])
        for spine in ax.spines.values():
            spine.set_color(c["text"])
        ax.tick_params(colors=c["text"], labelsize=8)
        ax.xaxis.label.set_color(c["text"])
        ax.yaxis.label.set_color(c["text"])
        ax.title.set_color(c["text"])
        ax.grid(True, color=c["grid"], linewidth=0.5, alpha=0.8)

    def _style_legend(self, legend) -> None:
        c = self.colors
        legend.get_frame().set_facecolor(c["background"])
        legend.get_frame().set_edgecolor(c["grid"])
        for text in legend.get_texts():
            text.set_color(c["text"])
