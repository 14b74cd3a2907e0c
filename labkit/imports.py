"""Import-time costs the course does not pay: also a pytest plugin (``-p labkit.imports``).

jsonschema, which nbformat imports whenever it loads (so papermill, nbclient, nbval and
the course runner do), imports ``rfc3987_syntax`` for its "iri" formats, and that module
builds its Lark grammars at import: about a second in every such process
(python-jsonschema/jsonschema issue 1428). Notebook validation never checks an IRI, so
:func:`defer_rfc3987_syntax` hands jsonschema a stand-in that imports the real module the
first time an IRI is actually checked.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

_MODULE = "rfc3987_syntax"


def defer_rfc3987_syntax() -> bool:
    """Install the stand-in (before jsonschema loads); whether it was installed."""
    if _MODULE in sys.modules or "jsonschema" in sys.modules:
        return False
    if importlib.util.find_spec(_MODULE) is None:
        return False  # not installed: jsonschema does without it anyway
    real: Any = None

    def is_valid_syntax(rule: str, value: str) -> bool:
        nonlocal real
        if real is None:
            if sys.modules.get(_MODULE) is stand_in:
                del sys.modules[_MODULE]
            real = importlib.import_module(_MODULE)
        return bool(real.is_valid_syntax(rule, value))

    stand_in = types.ModuleType(_MODULE, "deferred by labkit.imports: loads on first use")
    vars(stand_in)["is_valid_syntax"] = is_valid_syntax
    sys.modules[_MODULE] = stand_in
    return True


defer_rfc3987_syntax()  # as a pytest plugin (-p labkit.imports), before other plugins load
