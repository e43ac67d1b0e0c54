#!/usr/bin/env python3
"""check-source.py — structural rules for src/, run by scripts/test.sh.

1. No include cycle among src/ modules, nor among the files of one module
   (foo.c with foo.h is one unit: a private header foo_int.h that includes
   foo.h while foo.c includes foo_int.h is a cycle, so private headers
   declare the public types they need instead of including them).
2. Each module includes only modules of its own layer or below (the layer
   map below; DEVELOPERS.md's "Layers" section describes the same map).
3. No .c file longer than MAX_C_LINES lines.

A module is a family of files: everything whose name, up to the first
underscore, is the same (pool.c and pool.h are module "pool"; policy.c,
policy_rel.c, policy_walk.h and policy_int.h are module "policy";
client.c, client_login.c and client_int.h are module "client"). One
concern split over several files is one module: its parts may include each
other; modules may not. A module missing from the map is an error:
declare it.

Usage: scripts/check-source.py [SRC_DIR]   (default: src next to this script)
Exit status 0 when every rule holds, 1 otherwise, with one line per problem.
"""
import fnmatch
import os
import re
import sys

MAX_C_LINES = 1500

# Lowest first. Patterns are fnmatch-style module names.
LAYERS = [
    ("base", ["pgw", "buf", "log", "codec", "config", "auth", "scram", "tls", "stats",
              "audit", "snapshot", "worker", "peers"]),
    ("logic", ["policy*", "schema", "scrub", "ask*", "llm", "kvcache", "cache*", "changes"]),
    ("pipeline", ["stmt"]),
    ("sessions", ["backend", "pool"]),
    ("relay", ["client", "link"]),
    ("process", ["server"]),
    ("views", ["admin", "metrics"]),
    ("program", ["main"]),
]

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(module):
    for index, (name, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(module, p) for p in patterns):
            return index, name
    return None, None


def module_of(filename, stems_with_header=None):
    """The module a file belongs to: its name up to the first underscore."""
    stem = os.path.splitext(filename)[0]
    return stem.split("_", 1)[0]


def cycles(edges, nodes, what):
    """Every cycle of the graph, once each: depth-first search."""
    problems = []
    state = {}
    stack = []
    reported = set()

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, {})):
            if state.get(target) == "open":
                cycle = stack[stack.index(target):] + [target]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    steps = [f"{a} -> {b} ({edges[a][b]})" for a, b in zip(cycle, cycle[1:])]
                    problems.append(f"{what}: " + "; ".join(steps))
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(nodes):
        if node not in state:
            visit(node)
    return problems


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "src")
    files = sorted(f for f in os.listdir(src) if f.endswith((".c", ".h")))
    stems_with_header = {f[:-2] for f in files if f.endswith(".h") and not f.endswith("_int.h")}
    problems = []
    edges = {}  # module -> {included module: "file:line"}
    modules = {}
    unit_edges = {}  # file stem -> {included file stem: "file:line"}
    units = {}
    for f in files:
        mod = module_of(f, stems_with_header)
        modules.setdefault(mod, []).append(f)
        unit = os.path.splitext(f)[0]
        units.setdefault(unit, []).append(f)
        path = os.path.join(src, f)
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        if f.endswith(".c"):
            n = text.count("\n")
            if n > MAX_C_LINES:
                problems.append(f"src/{f}: {n} lines, more than {MAX_C_LINES}: split it")
        for m in INCLUDE.finditer(text):
            target = m.group(1)
            if target not in files:
                continue  # a system or generated header
            line = text.count("\n", 0, m.start()) + 1
            tunit = os.path.splitext(target)[0]
            if tunit != unit:
                unit_edges.setdefault(unit, {}).setdefault(tunit, f"src/{f}:{line}")
            tmod = module_of(target, stems_with_header)
            if tmod != mod:
                edges.setdefault(mod, {}).setdefault(tmod, f"src/{f}:{line}")

    for mod in sorted(modules):
        if layer_of(mod)[0] is None:
            problems.append(f"module {mod} ({', '.join(modules[mod])}) is in no layer: "
                            "declare it in scripts/check-source.py and DEVELOPERS.md")

    for mod, targets in sorted(edges.items()):
        lm, lname = layer_of(mod)
        for tmod, where in sorted(targets.items()):
            lt, tname = layer_of(tmod)
            if lm is not None and lt is not None and lt > lm:
                problems.append(f"{where}: {mod} ({lname}) includes {tmod} ({tname}), "
                                "a higher layer")

    problems += cycles(edges, modules, "include cycle")
    problems += cycles(unit_edges, units, "include cycle between files")

    for p in problems:
        print(f"check-source: {p}")
    if problems:
        return 1
    print(f"check-source: {len(files)} files in {len(modules)} modules: "
          "no include cycle, layers respected, no .c file over "
          f"{MAX_C_LINES} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
