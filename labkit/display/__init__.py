"""Rendering helpers shared by doctor, status and the course report.

Everything here is plain text and HTML built from the standard library; any
ipywidgets code must live in its own module and be imported lazily, so that a
terminal, papermill or a CI machine never needs a browser stack.
"""

from labkit.display.render import SIMULATED_BADGE
from labkit.display.tables import (
    STATUS_MARKS,
    Callout,
    Table,
    badge,
    escape,
    simulated_banner,
)

__all__ = ["SIMULATED_BADGE", "STATUS_MARKS", "Callout", "Table", "badge", "escape",
           "simulated_banner"]
