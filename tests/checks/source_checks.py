#!/usr/bin/env python3
"""Checks of the source tree that keep its layout honest (run by ctest).

  layers   an inner layer never includes an outer one
           (core <- config <- domain and ports <- adapters <- apps),
           and nothing in src/ outside src/cli/ includes src/cli/.
  size     no file in src/ over 600 lines, no function over 80, but for the
           exceptions in size_allowlist.txt (at most 5, each with a reason).
  seams    processes start only in the real process runner, and the clock is
           read only by the real clock, the real process runner and the step
           supervisor: everything else gets them injected.
  env      the shipped code reads only the environment variables that
           docs/cli.md lists, and no test switch (SALLYPORT_TEST*) is left in
           src/ or in the shipped binary.

  selftest each check fails on a tree made to break it.

Usage: source_checks.py <check> <source dir> [shipped binary]
Exit 0 when the check holds; else 1 with one line per violation.
"""
import os
import re
import sys

# Longest matching prefix wins.
LAYERS = [
    ("src/core/", 0, "core"),
    ("src/config/", 1, "config"),
    ("src/inventory/", 2, "domain"),
    ("src/rollout/", 2, "domain"),
    ("src/queue/", 2, "domain"),
    ("src/auth/", 2, "domain"),
    ("src/build/", 2, "domain"),
    ("src/deploy/", 2, "domain"),
    ("src/notify/", 2, "domain"),
    ("src/secrets/", 2, "domain"),
    # Ports: the narrow interfaces beside their adapters.
    ("src/lb/load_balancer.", 2, "port"),
    ("src/health/health.", 2, "port"),
    ("src/runtime/runtime.", 2, "port"),
    ("src/transport/transport.", 2, "port"),
    ("src/hooks/hook_runner.", 2, "port"),
    ("src/hooks/silencer.", 2, "port"),
    ("src/lb/", 3, "adapter"),
    ("src/health/", 3, "adapter"),
    ("src/runtime/", 3, "adapter"),
    ("src/transport/", 3, "adapter"),
    ("src/store/", 3, "adapter"),
    ("src/vcs/", 3, "adapter"),
    ("src/runner/", 3, "adapter"),
    ("src/client/", 3, "adapter"),
    ("src/registry/", 3, "adapter"),
    ("src/hooks/", 3, "adapter"),
    ("src/notify/notifier.", 3, "adapter"),
    ("src/wiring/", 4, "app"),
    ("src/server/", 4, "app"),
    ("src/agent/", 4, "app"),
    ("src/cli/", 4, "app"),
]

MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80
MAX_EXCEPTIONS = 5

# Files allowed to start processes and to read the clock.
PROCESS_RUNNERS = {"src/core/subprocess.cc"}
# The real clock, the real process runner, the step supervisor, and the SSH
# transport's runner of remote commands (a poll loop over the session's
# pipes, like the local runner's).
CLOCK_READERS = {"src/core/clock.cc", "src/core/subprocess.cc", "src/runner/runner.cc",
                 "src/transport/ssh/mux_client.cc"}
CLOCK_READ = re.compile(
    r"steady_clock::now|system_clock::now|high_resolution_clock::now|\bSteadyClock::now|\bclock_gettime\s*\(|\bgettimeofday\s*\(|"
    r"\btime\s*\(\s*(nullptr|NULL|0)\s*\)|RealClock::Instance\(\)\s*\.\s*(WallMs|MonotonicMs|Sleep)\b")


def sources(root):
    out = []
    for d, _, files in os.walk(os.path.join(root, "src")):
        for f in files:
            if f.endswith((".cc", ".h")):
                full = os.path.join(d, f)
                out.append((os.path.relpath(full, root), full))
    return sorted(out)


def layer_of(rel):
    best = None
    for prefix, layer, name in LAYERS:
        if rel.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, layer, name)
    return best


def strip_comments_and_strings(text):
    """The code with comments, string and char literals blanked (lines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        else:
            m = re.match(r'R"([^(\s]*)\(', text[i:i + 20])
            if m:
                end = ")" + m.group(1) + '"'
                j = text.find(end, i + len(m.group(0)))
                j = n if j < 0 else j + len(end)
                out.append(re.sub(r"[^\n]", " ", text[i:j]))
                i = j
            elif text[i] == '"' or (text[i] == "'" and not (i > 0 and text[i - 1].isalnum())):
                q, j = text[i], i + 1
                while j < n and text[j] != q and text[j] != "\n":
                    j += 2 if text[j] == "\\" else 1
                out.append(q + " " * (j - i - 1) + (q if j < n else ""))
                i = j + 1
            else:
                out.append(text[i])
                i += 1
    return "".join(out)


def functions(text):
    """(length in lines, first line, signature) of every outermost function body."""
    src = strip_comments_and_strings(text)
    res, stack, last = [], [], 0
    for m in re.finditer(r"[{};]", src):
        ch, pos = m.group(0), m.start()
        if ch == "{":
            head = src[last:pos].strip()
            in_fn = any(k == "fn" for k, _, _ in stack)
            kind = "other"
            if not in_fn:
                before_paren = head[:head.find("(")] if "(" in head else head
                if re.search(r"\bnamespace\b", head) or head.startswith("extern"):
                    kind = "ns"
                elif re.search(r"\b(class|struct|union|enum)\b", before_paren) and not re.search(
                        r"\)\s*(const)?\s*(override|final|noexcept)?\s*$", head):
                    kind = "type"
                elif re.search(r"\)[\w\s:&*<>,\->]*$", head) or re.search(r"\)\s*:\s*[\s\S]*\)$", head) or \
                        re.search(r"\b(TEST|TEST_F|TEST_P)\b", head):
                    kind = "fn"
            stack.append((kind, src.count("\n", 0, pos) + 1, " ".join(head.split())[-100:]))
        elif ch == "}" and stack:
            kind, line, name = stack.pop()
            if kind == "fn":
                res.append((src.count("\n", 0, pos) + 1 - line + 1, line, name))
        last = pos + 1
    return res


def check_layers(root):
    bad = []
    for rel, full in sources(root):
        if rel.endswith("_test.cc"):
            continue  # Tests sit outside the layers: a unit test may wire a real adapter (an in-memory store).
        mine = layer_of(rel)
        if mine is None:
            bad.append(f"{rel}: in no layer (add its folder to LAYERS in tests/checks/source_checks.py)")
            continue
        for n, line in enumerate(open(full, errors="replace"), 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m or not os.path.exists(os.path.join(root, "src", m.group(1))):
                continue
            target = "src/" + m.group(1)
            theirs = layer_of(target)
            if theirs is None:
                continue
            if target.startswith("src/cli/") and not rel.startswith("src/cli/"):
                bad.append(f"{rel}:{n}: includes {m.group(1)}: only src/cli/ may include the CLI")
            elif theirs[1] > mine[1]:
                bad.append(f"{rel}:{n}: {mine[2]} includes {theirs[2]} {m.group(1)} (an outer layer)")
    return bad


def load_allowlist(root):
    entries = {}
    path = os.path.join(root, "tests", "checks", "size_allowlist.txt")
    for n, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        what, _, reason = line.partition(" -- ")
        if not reason.strip():
            raise SystemExit(f"size_allowlist.txt:{n}: an exception needs its reason after ' -- '")
        entries[what.strip()] = reason.strip()
    return entries


def check_size(root):
    allow = load_allowlist(root)
    bad, used = [], set()
    if len(allow) > MAX_EXCEPTIONS:
        bad.append(f"size_allowlist.txt: {len(allow)} exceptions, at most {MAX_EXCEPTIONS}")
    for rel, full in sources(root):
        text = open(full, errors="replace").read()
        lines = text.count("\n")
        if lines > MAX_FILE_LINES:
            if rel in allow:
                used.add(rel)
            else:
                bad.append(f"{rel}: {lines} lines (at most {MAX_FILE_LINES})")
        for length, line, name in functions(text):
            if length <= MAX_FUNCTION_LINES:
                continue
            key = f"{rel}:{name.split('(')[0].split()[-1] if '(' in name else name}"
            if key in allow:
                used.add(key)
            else:
                bad.append(f"{rel}:{line}: function of {length} lines (at most {MAX_FUNCTION_LINES}): {name}")
    for stale in sorted(set(allow) - used):
        bad.append(f"size_allowlist.txt: '{stale}' is no longer over the limit: remove it")
    return bad


def check_seams(root):
    bad = []
    for rel, full in sources(root):
        if rel.endswith("_test.cc"):
            continue
        code = strip_comments_and_strings(open(full, errors="replace").read())
        for n, line in enumerate(code.split("\n"), 1):
            if re.search(r"\bRunCommand\s*\(", line) and rel not in PROCESS_RUNNERS:
                bad.append(f"{rel}:{n}: starts a process outside the real process runner (take a ProcessRunner)")
            if CLOCK_READ.search(line) and rel not in CLOCK_READERS:
                bad.append(f"{rel}:{n}: reads the clock directly (take a Clock): {line.strip()}")
    return bad


def check_env(root, binary):
    bad = []
    doc = open(os.path.join(root, "docs", "cli.md")).read()
    section = doc[doc.find("## Environment"):] if "## Environment" in doc else ""
    listed = set(re.findall(r"`\$?([A-Z][A-Z0-9_]+)`", section))
    for rel, full in sources(root):
        text = open(full, errors="replace").read()
        if "SALLYPORT_TEST" in text or "SP_TESTBIN" in text:
            bad.append(f"{rel}: names a test switch (SALLYPORT_TEST* / SP_TESTBIN*): those live in tests/")
        if rel.endswith("_test.cc"):
            continue
        for name in re.findall(r'(?:getenv|\bEnv)\(\s*"([A-Z_][A-Z0-9_]*)"', text):
            if name not in listed:
                bad.append(f"{rel}: reads ${name}, which docs/cli.md's 'Environment' section does not list")
    if binary:
        data = open(binary, "rb").read()
        for switch in (b"SALLYPORT_TEST", b"SP_TESTBIN"):
            if switch in data:
                bad.append(f"{binary}: the shipped binary holds {switch.decode()}")
    return bad


def selftest(_root):
    """Each check fails on a tree that breaks it (and passes on one that does not)."""
    import shutil
    import tempfile
    bad = []
    made = []

    def tree(files):
        d = tempfile.mkdtemp(prefix="sp-checks-")
        made.append(d)
        for path, text in files.items():
            full = os.path.join(d, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)
        os.makedirs(os.path.join(d, "tests", "checks"), exist_ok=True)
        open(os.path.join(d, "tests", "checks", "size_allowlist.txt"), "w").close()
        return d

    ok = {"src/core/a.h": "#pragma once\n", "src/server/b.h": '#include "core/a.h"\n'}
    cases = [
        ("layers", {**ok, "src/core/c.cc": '#include "server/b.h"\n'}, "core includes app"),
        ("layers", {**ok, "src/server/d.cc": '#include "cli/main.h"\n', "src/cli/main.h": ""}, "only src/cli/"),
        ("size", {**ok, "src/core/big.cc": "int x;\n" * 700}, "lines (at most 600)"),
        ("size", {**ok, "src/core/f.cc": "void F() {\n" + "  g();\n" * 90 + "}\n"}, "function of"),
        ("seams", {**ok, "src/build/x.cc": "void F() { RunCommand(spec); }\n"}, "starts a process"),
        ("seams", {**ok, "src/server/y.cc": "auto t = std::chrono::steady_clock::now();\n"}, "reads the clock"),
    ]
    try:
        for check, files, want in cases:
            d = tree(files)
            found = {"layers": check_layers, "size": check_size, "seams": check_seams}[check](d)
            if not any(want in f for f in found):
                bad.append(f"selftest: {check} did not report '{want}' (got {found})")
            clean = {"layers": check_layers, "size": check_size, "seams": check_seams}[check](tree(ok))
            if clean:
                bad.append(f"selftest: {check} reported a clean tree: {clean}")
    finally:
        for d in made:
            shutil.rmtree(d, ignore_errors=True)
    return bad


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    check, root = sys.argv[1], sys.argv[2]
    binary = sys.argv[3] if len(sys.argv) > 3 else ""
    fn = {"layers": check_layers, "size": check_size, "seams": check_seams, "selftest": selftest,
          "env": lambda r: check_env(r, binary)}.get(check)
    if not fn:
        print(f"unknown check '{check}'")
        return 2
    bad = fn(root)
    for b in bad:
        print(b)
    print(f"{check}: {'OK' if not bad else str(len(bad)) + ' violation(s)'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
