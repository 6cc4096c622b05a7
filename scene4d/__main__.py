"""``python -m scene4d``: the same as the ``scene4d`` command."""

from scene4d.cli import app

app(prog_name="scene4d")
