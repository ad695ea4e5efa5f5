#!/usr/bin/env python3
"""Prints the issue-6 table (markdown) from the JSON lines bench/run collected: each figure beside
its peer from the same run, the ratio, the target and whether it is met."""
import json
import sys


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def find(rows, **want):
    for r in rows:
        if all(r.get(k) == v for k, v in want.items()):
            return r
    return None


def num(r, key="value"):
    return float(r[key]) if r and key in r else None


def fmt(v, unit=""):
    if v is None:
        return "—"
    return (f"{v:,.0f}" if v >= 100 else f"{v:.1f}") + unit


def main():
    rows = load(sys.argv[1])
    out = ["| figure | quickthumb | peer, same run | ratio | target | met |", "|---|---|---|---|---|---|"]

    def line(name, ours, peer=None, peer_name="", target="", met=None, ratio=True):
        r = f"{ours / peer:.1f}x" if ratio and ours is not None and peer else "—"
        m = "—" if met is None else ("yes" if met else "**no**")
        out.append(f"| {name} | {fmt(ours)} | {fmt(peer)} {peer_name} | {r} | {target} | {m} |")

    bull = num(find(rows, system="bullmq"), "end_to_end_per_s")
    for redis in ("off", "on"):
        q = find(rows, system="quickthumb", figure="queue_jobs_per_s", redis=redis)
        v = num(q)
        line(f"queue: no-op jobs/s, SQLite durable, Redis mirror {redis} (p99 {fmt(num(q, 'p99_ms'))} ms)",
             v, bull, "BullMQ", "≥ 5x BullMQ", v is not None and bull is not None and v >= 5 * bull)
    seed_up = num(find(rows, system="seed-py", figure="uploads_per_s"))
    for workers in (0, None):
        for conns in (16, 256):
            cands = [r for r in rows if r.get("figure") == "uploads_per_s" and r.get("system") == "quickthumb"
                     and r.get("connections") == conns and "p99_ms" in r
                     and ((r.get("workers") == 0) if workers == 0 else (r.get("workers", 0) > 0))]
            u = cands[0] if cands else None
            v, p99 = num(u), num(u, "p99_ms")
            label = f"uploads/s, {conns} connections, workers {'paused' if workers == 0 else 'on'} (p99 {fmt(p99)} ms)"
            if workers == 0 and conns == 16:
                met = v is not None and seed_up is not None and v >= 10 * seed_up and p99 is not None and p99 < 20
                line(label, v, seed_up, "seed-py", "≥ 10x seed, p99 < 20 ms", met)
            else:
                line(label, v, seed_up if conns == 16 else None, "seed-py" if conns == 16 else "", "", None)
    e2e = num(find(rows, system="quickthumb", figure="end_to_end_thumbs_per_s"))
    seed_e2e = num(find(rows, system="seed-py", figure="end_to_end_thumbs_per_s"))
    line("end to end: thumbnails/s, 300 jobs, 2 workers", e2e, seed_e2e, "seed-py", "≥ 10x seed",
         e2e is not None and seed_e2e is not None and e2e >= 10 * seed_e2e)
    st = find(rows, system="quickthumb", figure="status_reads_per_s")
    v = num(st)
    line(f"status reads/s, 64 connections (p99 {fmt(num(st, 'p99_ms'))} ms)", v, None, "", "≥ 20 000/s",
         v is not None and v >= 20000, ratio=False)
    idle = num(find(rows, system="quickthumb", figure="rss_idle_kib"))
    line("RSS idle, MiB", idle / 1024 if idle else None, None, "", "≤ 20 MiB", idle is not None and idle <= 20 * 1024, ratio=False)
    load_ = num(find(rows, system="quickthumb", figure="rss_under_load_kib"))
    line("RSS under upload load (256 connections, workers on), peak MiB", load_ / 1024 if load_ else None, None, "",
         "≤ 150 MiB", load_ is not None and load_ <= 150 * 1024, ratio=False)
    backlog = [r for r in rows if r.get("figure") == "rss_backlog_kib"]
    if backlog:
        b = backlog[-1]
        line(f"RSS with {b.get('waiting')} jobs waiting, MiB", num(b) / 1024, None, "", "", None, ratio=False)
    drain = find(rows, system="quickthumb", figure="drain_jobs_per_s")
    if drain:
        line(f"drain of {drain.get('jobs')} small jobs, jobs/s", num(drain), None, "", "", None, ratio=False)
    print("\n".join(out))
    memory_tables(rows)


def memory_tables(rows):
    """bench/big_images.sh: peak RSS per 81 MP image beside vipsthumbnail and sharp, and the bursts."""
    peaks = [r for r in rows if r.get("figure") == "peak_rss_mib"]
    if peaks:
        images = list(dict.fromkeys(r["image"] for r in peaks))
        print("\n| 81 MP image to 256 px, peak RSS | quickthumb | vipsthumbnail | sharp |\n|---|---|---|---|")
        for img in images:
            cell = lambda system: fmt(num(find(rows, figure="peak_rss_mib", image=img, system=system)), " MiB")
            print(f"| {img} | {cell('quickthumb')} | {cell('vipsthumbnail')} | {cell('sharp')} |")
    bursts = [r for r in rows if r.get("figure") == "burst_rss_mib"]
    if bursts:
        print("\n| burst | allocator | jobs succeeded | idle | peak | after |\n|---|---|---|---|---|---|")
        for b in bursts:
            print(f"| {b['burst']} | {b['allocator']} | {b['succeeded']}/{b['jobs']} | {fmt(num(b, 'idle_mib'), ' MiB')} | "
                  f"{fmt(num(b, 'peak_mib'), ' MiB')} | {fmt(num(b, 'after_mib'), ' MiB')} |")


if __name__ == "__main__":
    main()
