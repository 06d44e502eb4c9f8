"""Bokeh dashboards of the live lab (see `live`): in JupyterLab and Voila through a
jupyter_bokeh BokehModel that is fresh when a browser attaches (`bokeh_widget`), and as
standalone offline HTML for the headless demo; `calls` is the call-cost chart."""

from .calls import PAPER_GHZ, call_bars
from .live import LiveDashboard, save_html

__all__ = ["PAPER_GHZ", "LiveDashboard", "call_bars", "save_html"]
