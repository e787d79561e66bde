#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Compare the dynamic symbols of libdevmm.so with the public headers.

Usage: check-abi.py NM LIBDEVMM_SO HEADER...   (devmm.h, policy.h)

Every function declared in a public header (static inline ones aside) must be exported (in the DEVMM_* version
node) and nothing else may be: the version script exports dmm_*, so an
internal helper named dmm_... would otherwise leak into the ABI. Exit 0 when
the two sets match, 1 otherwise.
"""
import re
import subprocess
import sys


def declared(header):
    text = open(header, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    # Drop preprocessor lines (with their continuations): macros are not ABI.
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
    names = set(re.findall(r"\b(dmm_[A-Za-z0-9_]+)\s*\(", text))
    # static inline helpers are defined in the header, not exported.
    inline = set(re.findall(r"\bstatic\b[^;{}()]*?\b(dmm_[A-Za-z0-9_]+)\s*\(", text))
    return names - inline


def exported(nm, lib):
    out = subprocess.run([nm, "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    syms = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        kind, name = fields[1], fields[2]
        base, _, node = name.partition("@")
        syms[base] = (kind, node.lstrip("@"))
    return syms


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    nm, lib = sys.argv[1:3]
    want = set()
    for header in sys.argv[3:]:
        want |= declared(header)
    syms = exported(nm, lib)
    # The version node itself appears as an absolute symbol.
    have = {n for n, (kind, _) in syms.items() if kind not in ("A",)}
    ok = True
    for name in sorted(want - have):
        print(f"declared in a public header but not exported: {name}")
        ok = False
    for name in sorted(have - want):
        print(f"exported but not declared in a public header: {name}")
        ok = False
    for name in sorted(want & have):
        node = syms[name][1]
        if not node.startswith("DEVMM_"):
            print(f"exported without a DEVMM_* version node: {name}")
            ok = False
    print(f"{len(want)} functions declared, {len(have)} symbols exported")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
