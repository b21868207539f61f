"""Measures the desktop app (run through bench/desktop.sh, which builds release and provides the session):

- launch to gateway ready: from spawning the process to the first `200` from `/health` (polled every 2 ms), and
  the app's own `gateway ready … ms=N` log line (process start to the gateway listening), median of N launches;
- resident memory of every process of the app (the app; the window process with WebKit's web and network
  processes): launched in the tray only (no window yet), with the window open on its page, and after the window
  was closed and its process ended. RSS (what the bar counts) and PSS (shared pages split between processes) are both reported.

Prints a Markdown table and writes the numbers as JSON to the path given as the first argument (if any).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import free_port, start_app, stop_app, wait_until  # noqa: E402

LAUNCHES = int(os.environ.get("DESKTOP_BENCH_LAUNCHES", "7"))
SETTLE_S = float(os.environ.get("DESKTOP_BENCH_SETTLE_S", "5"))


def health_ok(port: int) -> bool:
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def launch_to_ready(mock: str) -> dict:
    spawn_to_health, logged = [], []
    for _ in range(LAUNCHES):
        with tempfile.TemporaryDirectory(prefix="llm-gateway-desktop-bench-", ignore_cleanup_errors=True) as d:
            port = free_port()
            started = time.monotonic()
            app = start_app(Path(d), mock, "--hidden", port=port)
            try:
                wait_until("health", lambda: health_ok(port), every_s=0.002)
                spawn_to_health.append((time.monotonic() - started) * 1000)
                match = app.wait_log(r"gateway ready on \S+ ms=(\d+)")
                logged.append(int(match.group(1)))
            finally:
                stop_app(app)
    return {
        "launches": LAUNCHES,
        "spawn_to_health_ms_median": round(statistics.median(spawn_to_health), 1),
        "spawn_to_health_ms_max": round(max(spawn_to_health), 1),
        "logged_ready_ms_median": statistics.median(logged),
        "spawn_to_health_ms_all": [round(v, 1) for v in spawn_to_health],
    }


def tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def memory(pid: int) -> dict:
    processes = []
    for p in tree(pid):
        try:
            name = Path(f"/proc/{p}/comm").read_text().strip()
            status = Path(f"/proc/{p}/status").read_text()
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:
            continue
        rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        pss = int(re.search(r"^Pss:\s+(\d+)", rollup, re.M).group(1))
        processes.append({"pid": p, "name": name, "rss_mb": round(rss / 1024, 1), "pss_mb": round(pss / 1024, 1)})
    return {
        "rss_mb": round(sum(p["rss_mb"] for p in processes), 1),
        "pss_mb": round(sum(p["pss_mb"] for p in processes), 1),
        "processes": processes,
    }


def by_mapping(pid: int, top: int = 12) -> list[dict]:
    """Where a process's resident memory is: RSS summed per mapped file (anonymous memory as `[anon]`, the heap as
    `[heap]`), largest first; `private_dirty` is what no other process could share."""
    sizes: dict[str, list[int]] = {}
    name = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            name = head[5] if len(head) > 5 else "[anon]"
            name = Path(name).name if name.startswith("/") else name
        elif head[0] in ("Rss:", "Private_Dirty:"):
            entry = sizes.setdefault(name, [0, 0])
            entry[0 if head[0] == "Rss:" else 1] += int(head[1])
    ranked = sorted(sizes.items(), key=lambda kv: -kv[1][0])[:top]
    return [{"mapping": k, "rss_mb": round(v[0] / 1024, 1), "private_dirty_mb": round(v[1] / 1024, 1)}
            for k, v in ranked]


def window_memory(mock: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="llm-gateway-desktop-bench-", ignore_cleanup_errors=True) as d:
        app = start_app(Path(d), mock, "--hidden")
        try:
            app.wait_log(r"gateway ready on")
            time.sleep(SETTLE_S)
            tray_only = memory(app.proc.pid)
            tray_only["by_mapping"] = by_mapping(app.proc.pid)

            assert app.launch_again("llm-gateway://open").returncode == 0
            app.wait_log(r"window created and shown")
            time.sleep(SETTLE_S)
            window_open = memory(app.proc.pid)

            subprocess.run(["wmctrl", "-c", "LLM Gateway"], env=app.env, check=True, timeout=30)
            app.wait_log(r"window process exited")
            time.sleep(SETTLE_S)
            window_closed = memory(app.proc.pid)
        finally:
            stop_app(app)
    return {"tray_only": tray_only, "window_open": window_open, "window_closed_destroyed": window_closed}


def main() -> None:
    mock_proc = subprocess.Popen([os.environ["MOCK_UPSTREAM_BIN"], "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                                 text=True)
    mock = re.search(r"(http://\S+)", mock_proc.stdout.readline()).group(1)
    try:
        results = {"launch": launch_to_ready(mock), "memory": window_memory(mock)}
    finally:
        mock_proc.terminate()
        mock_proc.wait(timeout=10)
    launch, mem = results["launch"], results["memory"]
    print(f"\n| measure | value |\n|---|---|")
    print(f"| launch → /health 200 (median of {launch['launches']}, max) | {launch['spawn_to_health_ms_median']} ms "
          f"({launch['spawn_to_health_ms_max']} ms) |")
    print(f"| launch → gateway listening (app's log, median) | {launch['logged_ready_ms_median']} ms |")
    for key, label in [("tray_only", "in the tray, window never opened"), ("window_open", "window open"),
                       ("window_closed_destroyed", "window closed, webview destroyed")]:
        m = mem[key]
        names = ", ".join(f"{p['name']} {p['rss_mb']}" for p in m["processes"])
        print(f"| RSS (PSS), all processes: {label} | {m['rss_mb']} MB ({m['pss_mb']} MB): {names} |")
    print("\ntray process, resident memory by mapping (MB RSS / private dirty):")
    for m in mem["tray_only"]["by_mapping"]:
        print(f"  {m['rss_mb']:6.1f} {m['private_dirty_mb']:6.1f}  {m['mapping']}")
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
