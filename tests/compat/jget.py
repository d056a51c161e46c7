#!/usr/bin/env python3
"""Tiny JSON probe for run.sh: reads JSON on stdin, evaluates a Python expression
over it (bound to `d`), prints strings raw and everything else as compact,
key-sorted JSON. Exit 3 (and prints the error) when the input is not JSON or
the expression fails, so a check compares against that text and fails."""
import json
import sys

try:
    d = json.loads(sys.stdin.read())
    v = eval(sys.argv[1], {"__builtins__": {"sorted": sorted, "len": len, "list": list, "isinstance": isinstance, "str": str, "int": int, "bool": bool, "set": set, "any": any, "all": all}}, {"d": d})
except Exception as e:  # noqa: BLE001 - report whatever went wrong as the value
    print(f"<jget error: {type(e).__name__}: {e}>")
    sys.exit(3)
print(v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
