"""The hostile corpus's figures at the end of the run: outcomes by class, time and peak RSS, the worst files."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "hostile-corpus.json"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    _corpus_summary(terminalreporter)
    fuzzing = getattr(sys.modules.get("test_hostile_fuzz"), "STATS", None)
    if fuzzing:
        terminalreporter.section("fuzzing")
        for target, stats in fuzzing.items():
            terminalreporter.write_line(f"{target:<18} {stats['executions']:>7} executions {len(stats['crashes']):>3} "
                                        "crashes" + "".join(f"\n    {c['error']} ({c['file']})"
                                                            for c in stats["crashes"]))
        terminalreporter.write_line(f"{'total':<18} {sum(s['executions'] for s in fuzzing.values()):>7} executions "
                                    f"{sum(len(s['crashes']) for s in fuzzing.values()):>3} crashes")


def _corpus_summary(terminalreporter: Any) -> None:
    corpus = sys.modules.get("test_hostile_corpus")
    RESULTS = getattr(corpus, "RESULTS", None)
    if not RESULTS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("hostile corpus")
    by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in RESULTS:
        by_class[record["class"]].append(record)
    write(f"{'class':<10} {'cases':>5} {'ok':>4} {'refused':>7} {'failed':>6} {'total s':>8} {'max s':>7} "
          f"{'max RSS MB':>10}  slowest / largest")
    for cls, records in sorted(by_class.items()):
        slowest = max(records, key=lambda r: r["seconds"])
        fattest = max(records, key=lambda r: r["rss_mb"])
        count = {o: sum(1 for r in records if r["outcome"] == o) for o in ("ok", "refused", "FAILED")}
        write(f"{cls:<10} {len(records):>5} {count['ok']:>4} {count['refused']:>7} {count['FAILED']:>6} "
              f"{sum(r['seconds'] for r in records):>8.1f} {slowest['seconds']:>7.2f} {fattest['rss_mb']:>10.0f}  "
              f"{slowest['case'].split('/')[1]} / {fattest['case'].split('/')[1]}")
    worst_time = max(RESULTS, key=lambda r: r["seconds"])
    worst_rss = max(RESULTS, key=lambda r: r["rss_mb"])
    write(f"{len(RESULTS)} cases, {sum(r['size'] for r in RESULTS) / (1 << 20):,.1f} MiB in all; slowest "
          f"{worst_time['case']} {worst_time['seconds']:.2f} s ({worst_time['rss_mb']:.0f} MB); most memory "
          f"{worst_rss['case']} {worst_rss['rss_mb']:.0f} MB ({worst_rss['seconds']:.2f} s)")
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text(json.dumps(RESULTS, indent=1, ensure_ascii=True))
    write(f"every case's exit code, time, RSS and reason: {ARTIFACT}")
