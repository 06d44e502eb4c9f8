"""The "redleaf" Voila template: Voila's lab template, loading nothing from the network.

Voila 0.5's lab template links Font Awesome from cdn.jsdelivr.net; offline that is a
failed request on every page (Voila's own bundle already carries Font Awesome 5, so the
icons render without it). This template extends the lab template and re-states its
`notebook_css` block without the two CDN links, skipping to the block of the template
below (`super.super()`).

    install(share_dir, config_dir)   # writes voila/templates/redleaf/ and voila.json

`install` writes the template under `<share_dir>/voila/templates/redleaf` and, in
`<config_dir>/voila.json`, makes it Voila's default template (other settings in that
file are kept). `kernelspec.install` calls it, so `make setup` sets it up in the
virtualenv and `voila labs/00-tour.ipynb` uses it. No threads.
"""

from __future__ import annotations

import json
from pathlib import Path

TEMPLATE_NAME = "redleaf"
CONF = {"base_template": "lab"}
INDEX = """{%- extends 'voila/templates/lab/index.html.j2' -%}
{#- RedLeaf Lab: Voila's lab template without its Font Awesome CDN links (offline). -#}
{% import "spinner.macro.html.j2" as spinner %}

{%- block notebook_css -%}
  {% if frontend == "voila" %}
    {{ resources.include_js("static/voila-style.js") }}
  {% endif %}

  {{ spinner.css() }}

  <style>
    /*Hide empty cells*/
    .jp-mod-noOutputs.jp-mod-noInput {
      display: none;
    }
  </style>
{% if resources.show_margins %}
  <style>
    body {
      background: var(--jp-layout-color1);
    }

    #rendered_cells {
      padding-left: calc(calc(100% - 1200px) * 0.5);
      padding-right: calc( calc( 100% - 1200px - 20px ) * 0.5 );
    }

    #rendered_cells > div {
      background: var(--jp-layout-color0);
      padding: 6ex 12ex 8ex 12ex;
      border-radius: var(--jp-border-radius);
      box-shadow: var(--jp-elevation-z4);
    }
  </style>
{% endif %}

  {{ super.super() }}
{%- endblock notebook_css -%}
"""


def install(share_dir: str | Path, config_dir: str | Path) -> Path:
    """Write the template and make it Voila's default there; returns the template dir."""
    folder = Path(share_dir) / "voila" / "templates" / TEMPLATE_NAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conf.json").write_text(json.dumps(CONF, indent=1) + "\n")
    (folder / "index.html.j2").write_text(INDEX)
    config = Path(config_dir) / "voila.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    settings = json.loads(config.read_text()) if config.exists() else {}
    settings.setdefault("VoilaConfiguration", {})["template"] = TEMPLATE_NAME
    config.write_text(json.dumps(settings, indent=1) + "\n")
    return folder
