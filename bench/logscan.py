"""What the stack's logs say went wrong: warnings, errors and tracebacks per process."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (WARNING|ERROR|CRITICAL) (\S+): (.*)$")
NOISE = re.compile(r"0x[0-9a-f]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+(\.\d+)?")


def scan(log_dir: Path, top: int = 5) -> dict:
    found = {}
    for path in sorted(log_dir.glob("*.log")):
        levels: Counter = Counter()
        messages: Counter = Counter()
        tracebacks = 0
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("Traceback"):
                tracebacks += 1
            m = LINE.match(line)
            if m:
                level, logger, message = m.groups()
                levels[level] += 1
                messages[f"{level} {logger}: {NOISE.sub('#', message)[:160]}"] += 1
        if levels or tracebacks:
            found[path.stem] = {
                "by_level": dict(levels),
                "tracebacks": tracebacks,
                "top": [{"message": m, "count": n} for m, n in messages.most_common(top)],
            }
    return found


def print_findings(found: dict, log_dir: Path) -> None:
    print(f"\nservice logs ({log_dir}):", "no warnings or errors" if not found else "")
    for name, f in found.items():
        levels = ", ".join(f"{k} {v}" for k, v in f["by_level"].items())
        print(f"  {name}: {levels}{', tracebacks ' + str(f['tracebacks']) if f['tracebacks'] else ''}")
        for item in f["top"]:
            print(f"    {item['count']:6d} × {item['message']}")
