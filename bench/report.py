"""bench/results.json: one key per benchmark, merged so each run only replaces its own."""

from __future__ import annotations

import json
import os
from pathlib import Path


def merge_results(path: Path, name: str, data: dict) -> None:
    results = {}
    if path.exists():
        try:
            results = json.loads(path.read_text())
        except ValueError:
            results = {}
    results[name] = data
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, ensure_ascii=False, sort_keys=False) + "\n")
    os.replace(tmp, path)


def print_memory(memory: dict, cpu: dict) -> None:
    phases = list(cpu)
    head = "".join(f" {('cores ' + ph.replace('_phase', '')):>16}" for ph in phases)
    print(f"\n{'process':22} {'pid':>8} {'peak RSS MB':>12} {'RSS MB':>8}{head}")
    names = list(memory) + [n for n in cpu[phases[0]]["processes"] if n not in memory] if phases else list(memory)
    for name in names:
        m = memory.get(name, {})
        cores = "".join(
            f" {cpu[ph]['processes'].get(name, {}).get('cores', float('nan')):16.2f}" for ph in phases
        )
        peak = f"{m['peak_rss_mb']:12.1f}" if m.get("peak_rss_mb") is not None else f"{'-':>12}"
        rss = f"{m['rss_mb']:8.1f}" if m.get("rss_mb") is not None else f"{'-':>8}"
        print(f"{name:22} {str(m.get('pid', '')):>8} {peak} {rss}{cores}")
    print("(cores = CPU seconds ÷ wall seconds; postgresql and rabbitmq count every process of those servers)")
    for ph in phases:
        c = cpu[ph]
        print(f"machine busy during {ph}: {c['machine_busy'] * 100:.0f}% of {c['cpus']} CPUs, load average after {c['loadavg_after'][0]}")
        other = c["processes"].get("other (not this run)", {}).get("cores", 0)
        if other > 0.25 * c["cpus"]:
            print(f"  WARNING: other programs used {other:.2f} cores during {ph}: the figures understate this system")
