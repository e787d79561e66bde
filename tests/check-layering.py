#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The policy engine is a layer above the core: no file of src/policy may
include the core's internal headers (internal.h, types.h, pte.h, ...); it
reaches the core through the public headers and src/inject.h only.

Usage: check-layering.py SRC_DIR
Exit 0 when all holds, 1 otherwise (each offending line is printed).
"""
import pathlib
import re
import sys

ALLOWED = {"inject.h"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"\.\./([^"]+)"')


def main():
    src = pathlib.Path(sys.argv[1])
    core = {p.name for p in src.glob("*.h")} - ALLOWED
    bad = 0
    for f in sorted((src / "policy").glob("*.[ch]")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            m = INCLUDE.match(line)
            if m and m.group(1) in core:
                print(f"{f}:{n}: includes the core's {m.group(1)}")
                bad = 1
    return bad


if __name__ == "__main__":
    sys.exit(main())
