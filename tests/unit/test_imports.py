"""labkit.imports: jsonschema loads without building rfc3987_syntax's grammars, and IRI
checks still work (the real module loads on first use)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from labkit.imports import defer_rfc3987_syntax
print(defer_rfc3987_syntax())
import nbformat, jsonschema
print(sys.modules["rfc3987_syntax"].__doc__.startswith("deferred"))
checker = jsonschema.Draft7Validator.FORMAT_CHECKER
print(checker.conforms("http://example.org/a b", "iri"),
      checker.conforms("http://ex.org/ä", "iri"))
print("deferred" not in (sys.modules["rfc3987_syntax"].__doc__ or ""))
"""


def test_jsonschema_gets_a_stand_in_that_loads_the_real_module_on_first_use() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         check=True).stdout.split()
    # already installed by the module's own import (as a plugin), then: deferred, the real
    # answers once an IRI is checked, and the real module in place afterwards
    assert out == ["False", "True", "False", "True", "True"]
