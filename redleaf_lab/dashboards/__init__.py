"""Bokeh dashboards of the live lab (see `live`): in JupyterLab through jupyter_bokeh's
BokehModel, and as standalone offline HTML for the headless demo."""

from .live import LiveDashboard, save_html

__all__ = ["LiveDashboard", "save_html"]
