"""`LiveBokehModel`: jupyter_bokeh's `BokehModel`, but a late browser sees the plot as it is.

jupyter_bokeh serialises the bokeh document once, when the widget is made
(`render_bundle`), and sends later changes as comm messages to the views that exist
at that moment. A browser that renders the widget later (Voila shows the page after
the notebook ran; a reloaded JupyterLab page) asks the kernel for the widget's state
and gets that first snapshot: every point and crash mark added in between is missing.

Here the state a frontend asks for (`get_state`, used by ipywidgets' `request_state`
and `request_states`) carries the document serialised NOW, under the dashboard's
lock, so that no writer thread changes the document while it is serialised. The trait
itself is not reassigned (that would re-render the views that are up to date).
"""

from __future__ import annotations

import threading
from typing import Any

from bokeh.core.json_encoder import serialize_json
from jupyter_bokeh import BokehModel


class LiveBokehModel(BokehModel):
    def __init__(self, model: Any, lock: Any = None, **kwargs: Any) -> None:
        self._lock = lock if lock is not None else threading.RLock()
        with self._lock:
            super().__init__(model, **kwargs)

    def fresh_bundle(self) -> dict[str, Any]:
        """The render bundle of the document as it is now."""
        with self._lock:
            return dict(self._model_to_traits(self._model))

    def get_state(self, key: Any = None, drop_defaults: bool = False) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state(key=key, drop_defaults=drop_defaults)
        if "render_bundle" in state:
            state["render_bundle"] = serialize_json(self.fresh_bundle())
        return state
