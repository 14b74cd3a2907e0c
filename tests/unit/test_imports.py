"""labkit.imports: jsonschema loads without building rfc3987_syntax's grammars, and IRI
checks still reach the real module, imported on first use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# a stand-in for the real rfc3987_syntax (whose import is the cost being avoided): it says
# when it is imported and accepts one IRI only
FAKE = """
import sys
print("imported", file=sys.stderr)
def is_valid_syntax(rule, value):
    return rule == "iri" and value == "http://ok"
"""
SCRIPT = """
import sys
from labkit.imports import defer_rfc3987_syntax
print(defer_rfc3987_syntax())
import nbformat, jsonschema
print("deferred" in (sys.modules["rfc3987_syntax"].__doc__ or ""))
checker = jsonschema.Draft7Validator.FORMAT_CHECKER
print(checker.conforms("http://ok", "iri"), checker.conforms("http://bad", "iri"))
print("deferred" not in (sys.modules["rfc3987_syntax"].__doc__ or ""))
"""


def test_jsonschema_gets_a_stand_in_that_loads_the_real_module_on_first_use(tmp_path: Path
                                                                            ) -> None:
    (tmp_path / "rfc3987_syntax.py").write_text(FAKE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          check=True, env=env)
    # installed by the module's own import already (as a pytest plugin it must act at once);
    # jsonschema loads with the stand-in; the first IRI check imports the real module, once
    assert proc.stdout.split() == ["False", "True", "True", "False", "True"]
    assert proc.stderr.count("imported") == 1
