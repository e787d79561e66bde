#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Only dmm_* may be global in libdevmm.so and libdevmm.a.

Usage: check-symbols.py NM LIBDEVMM_SO LIBDEVMM_A

A program that links devmm and defines its own lock_page, find_vma or
handle_mm_fault must not collide with the library's internals. Every
defined global symbol of both libraries (the shared library's dynamic and
static symbol tables, every member of the archive) must start with dmm_.
The one exception is the shared library's version node (DEVMM_x.y, an
absolute symbol the version script defines). Both libraries must also
define the same dmm_* set, so nothing is public in one and not the other.
Exit 0 when all holds, 1 otherwise.
"""
import re
import subprocess
import sys

VERSION_NODE = re.compile(r"^DEVMM_[0-9]+\.[0-9]+$")


def globals_of(nm, lib, dynamic):
    args = [nm, "-g", "--defined-only"] + (["-D"] if dynamic else []) + [lib]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    syms = []
    for line in out.splitlines():
        fields = line.split()
        # "value kind name"; archive member headers ("x.o:") and blank lines
        # have fewer fields.
        if len(fields) < 3:
            continue
        kind, name = fields[1], fields[2].split("@")[0]
        syms.append((kind, name))
    return syms


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    nm, so, ar = sys.argv[1:]
    ok = True
    sets = {}
    for lib, dynamic, what in ((so, True, "libdevmm.so (dynamic)"),
                               (so, False, "libdevmm.so (symtab)"),
                               (ar, False, "libdevmm.a")):
        names = set()
        for kind, name in globals_of(nm, lib, dynamic):
            if name.startswith("dmm_"):
                names.add(name)
            elif lib == so and kind == "A" and VERSION_NODE.match(name):
                continue
            else:
                print(f"{what}: global symbol without the dmm_ prefix: {name} ({kind})")
                ok = False
        sets[what] = names
        print(f"{what}: {len(names)} dmm_* globals")
    base = sets["libdevmm.so (dynamic)"]
    for what, names in sets.items():
        for name in sorted(names - base):
            print(f"{what}: {name} is global here but not exported by libdevmm.so")
            ok = False
        for name in sorted(base - names):
            print(f"{what}: {name} is exported by libdevmm.so but not global here")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
