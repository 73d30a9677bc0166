"""`purelint server` with rule PUR001 broken on purpose, to show a crashing rule cannot stop the server.

Run as `python crashing_server.py`; tests/purelint/test_server.py drives it like the real server.
"""

import sys

from purelint._cli import main
from purelint import get_rule


def _broken(self, node, ctx):
    raise ValueError("broken on purpose")


rule = get_rule("PUR001")
for method in rule.handlers().values():
    setattr(rule, method, _broken)

sys.exit(main(["server"]))
