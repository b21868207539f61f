#!/usr/bin/env python3
"""The benchmark driver (started by bench/run.sh, which installs and builds what it needs).

Runs every scenario against the direct call, the gateway, the bare hyper reference proxy and LiteLLM, in one run,
on 127.0.0.1 only, and writes:
  OUT/summary.json   the numbers per scenario and target, with ratios against the direct call
  OUT/summary.md     the same as a Markdown table (pasted into bench/README.md)
  OUT/raw/           every tool's raw output, configs and server logs (git-ignored)

Every loop is bounded: each load run has a fixed duration, each stream a timeout, each wait a deadline.
Standard library only.
"""

import argparse
import atexit
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = "claude-sonnet-4-5"
CLIENT_KEY = "sk-ant-bench"  # the direct call and the bare proxy's account key; the gateway's account key too
ANTHROPIC_HEADERS = [
    "anthropic-version: 2023-06-01",
    "anthropic-beta: claude-code-20250219,interleaved-thinking-2025-05-14",
    "x-claude-code-session-id: 6d1f0c1e-0000-4000-8000-0000000bench",
    "user-agent: claude-cli/2.1.332 (external, sdk-cli)",
]

FULL = dict(
    tp_secs=8, warm_secs=1, reps=2, conc=[16, 64], lat_secs=6, lat_reps=5, rate=200, lat_conns=4,
    sse_requests=60, sse_conc=4, sse_interval_ms=20, sse_deltas=20, sse_reps=2,
    mem_streams=1000, mem_interval_ms=1000, mem_deltas=20, mem_timeout=120,
    startup_runs=30, litellm_startup_runs=3,
)
SMOKE = dict(
    tp_secs=1, warm_secs=0, reps=1, conc=[16, 64], lat_secs=1, lat_reps=1, rate=100, lat_conns=2,
    sse_requests=6, sse_conc=2, sse_interval_ms=10, sse_deltas=5, sse_reps=1,
    mem_streams=100, mem_interval_ms=100, mem_deltas=10, mem_timeout=30,
    startup_runs=3, litellm_startup_runs=1,
)

BODIES = {
    # name: (file, path, stream file, format)
    "anthropic-1k": ("anthropic-1k.json", "/v1/messages"),
    "anthropic-100k": ("anthropic-100k.json", "/v1/messages"),
    "openai-1k": ("openai-1k.json", "/v1/chat/completions"),
}
TARGETS = ["direct", "gateway", "bare", "axum", "litellm"]
LABEL = {"direct": "direct", "gateway": "gateway", "bare": "bare hyper proxy", "axum": "axum+reqwest proxy",
         "litellm": "LiteLLM"}

PROCS = []  # every process we started: stopped at exit, by pid


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    def __init__(self, name, cmd, logdir, env=None, cwd=None):
        self.name = name
        self.log_path = os.path.join(logdir, f"{name}.log")
        self.logf = open(self.log_path, "ab")
        self.p = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env=env, cwd=cwd)
        PROCS.append(self)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self, timeout=10):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.logf.close()
        if self in PROCS:
            PROCS.remove(self)


def stop_all():
    for p in list(PROCS):
        try:
            p.stop(5)
        except Exception:
            pass


atexit.register(stop_all)


def http(method, url, body=None, headers=None, timeout=30):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return None, str(e).encode()


def wait_ready(url, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited during start-up (see {proc.log_path})")
        status, _ = http("GET", url, timeout=2)
        if status == 200:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout}s")


# ---------------------------------------------------------------------------------------------------------------
# /proc readers
# ---------------------------------------------------------------------------------------------------------------
CLK = os.sysconf("SC_CLK_TCK")


def tree(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def cpu_secs(pid):
    total = 0.0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK
        except (OSError, IndexError, ValueError):
            pass
    return total


def rss_mb(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


def machine_busy_secs():
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts[:8]) - idle) / CLK


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# ---------------------------------------------------------------------------------------------------------------
# Load runs
# ---------------------------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args, cfg):
        self.a = args
        self.cfg = cfg
        self.raw = os.path.join(args.out, "raw")
        shutil.rmtree(self.raw, ignore_errors=True)
        os.makedirs(self.raw)
        self.bodies = os.path.join(self.raw, "bodies")
        subprocess.run([sys.executable, os.path.join(HERE, "gen_bodies.py"), self.bodies], check=True)
        self.results = {"scenarios": {}, "notes": []}
        self.upstream_pid = None

    # -- wrk ----------------------------------------------------------------------------------------------------
    def wrk(self, url, body, headers, conns, secs, threads, delay_ms=0, watch=()):
        env = dict(os.environ, BENCH_BODY=os.path.join(self.bodies, body), BENCH_HEADERS="|".join(headers),
                   BENCH_DELAY_MS=str(delay_ms))
        cmd = [self.a.wrk, "-t", str(threads), "-c", str(conns), "-d", f"{secs}s", "--timeout", "10s",
               "-s", os.path.join(HERE, "wrk", "post.lua"), url]
        cpu0 = {name: cpu_secs(pid) for name, pid in watch}
        busy0, t0, load0 = machine_busy_secs(), time.time(), loadavg()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            out, err = p.communicate(timeout=secs + 30)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        wall = time.time() - t0
        busy = machine_busy_secs() - busy0
        # wrk's own CPU: the reaped children's totals before and after (wrk is the only child reaped here).
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        line = next((l for l in out.decode(errors="replace").splitlines() if l.startswith("WRK_JSON ")), None)
        if line is None:
            return {"error": f"wrk printed no result: {err.decode(errors='replace')[-400:]}"}
        r = json.loads(line[len("WRK_JSON "):])
        dur = r["duration_us"] / 1e6
        n = r["requests"]
        errors = sum(r["errors"].values())
        cpu = {name: cpu_secs(pid) - cpu0[name] for name, pid in watch}
        cpu["wrk"] = wrk_cpu
        ours = sum(cpu.values())
        res = {
            "rps": round(n / dur, 1) if dur else 0.0,
            "requests": n,
            "errors": errors,
            "error_detail": r["errors"],
            "latency_ms": {k: round(v / 1000, 3) for k, v in r["latency_us"].items()},
            "cpu_us_per_req": {k: round(v * 1e6 / n, 1) if n else None for k, v in cpu.items()},
            "machine_busy_pct": round(100 * busy / (wall * os.cpu_count()), 1),
            # CPU used by processes other than wrk, the proxy and the upstream, as a share of the machine:
            # a hint that something else was running (other builds) and the run was disturbed.
            "other_busy_pct": round(100 * max(0.0, busy - ours) / (wall * os.cpu_count()), 1),
            "load1_before": load0,
        }
        return res

    # -- sse ----------------------------------------------------------------------------------------------------
    def sse(self, url, body, headers, requests, conc, timeout, rss_pids=(), done_marker="message_stop"):
        cmd = [self.a.tool, "sse", "--url", url, "--body", os.path.join(self.bodies, body), "--requests",
               str(requests), "--concurrency", str(conc), "--timeout-secs", str(timeout), "--done-marker",
               done_marker]
        for h in headers:
            cmd += ["--header", h]
        for pid in rss_pids:
            cmd += ["--rss-pid", str(pid)]
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=timeout + 60)
        except subprocess.TimeoutExpired:
            return {"error": "gwbench sse did not finish in time"}
        if p.returncode != 0:
            return {"error": p.stderr.decode(errors="replace")[-400:]}
        return json.loads(p.stdout)


# ---------------------------------------------------------------------------------------------------------------
# The systems under test
# ---------------------------------------------------------------------------------------------------------------
def start_upstream(b, name, interval_ms, deltas):
    port = free_port()
    p = Proc(name, [b.a.tool, "upstream", "--listen", f"127.0.0.1:{port}", "--workers", "2",
                    "--sse-interval-ms", str(interval_ms), "--sse-deltas", str(deltas)], b.raw)
    wait_ready(f"http://127.0.0.1:{port}/health", p, 10)
    return p, f"http://127.0.0.1:{port}"


def gateway_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_GATEWAY_")}
    env.setdefault("RUST_LOG", "info")
    return env


def gateway_config(b, name, upstream_url, extra=""):
    """A config dir with one API-key account (`extra`: more top-level YAML); returns (config path, port, server
    command)."""
    d = os.path.join(b.raw, f"{name}-config")
    os.makedirs(d, exist_ok=True)
    port = free_port()
    cfg = os.path.join(d, "config.yaml")
    with open(cfg, "w") as f:
        f.write(f"server: {{listen: 127.0.0.1:{port}}}\nupstream: {{base_url: {upstream_url}}}\n"
                "secrets: {backend: file}\nrouting: {session_affinity: true}\n" + extra)
    r = subprocess.run([b.a.gateway, "--config", cfg, "add-api-key", "--key", CLIENT_KEY, "--name", "bench"],
                       capture_output=True, env=gateway_env(), timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"add-api-key failed: {r.stderr.decode(errors='replace')}")
    return cfg, port, [b.a.gateway, "--config", cfg, "server", "--listen", f"127.0.0.1:{port}"]


def start_gateway(b, name, upstream_url):
    cfg, port, cmd = gateway_config(b, name, upstream_url)
    p = Proc(name, cmd, b.raw, env=gateway_env())
    wait_ready(f"http://127.0.0.1:{port}/health", p, 30)
    return p, f"http://127.0.0.1:{port}"


def bare_cmd(b, port, upstream_url):
    return [b.a.tool, "proxy", "--listen", f"127.0.0.1:{port}", "--upstream", upstream_url, "--api-key", CLIENT_KEY,
            "--workers", "2"]


def start_axum(b, name, upstream_url):
    port = free_port()
    p = Proc(name, [b.a.tool, "axum-proxy", "--listen", f"127.0.0.1:{port}", "--upstream", upstream_url,
                    "--api-key", CLIENT_KEY, "--workers", "2"], b.raw)
    wait_ready(f"http://127.0.0.1:{port}/health", p, 10)
    return p, f"http://127.0.0.1:{port}"


def start_bare(b, name, upstream_url):
    port = free_port()
    p = Proc(name, bare_cmd(b, port, upstream_url), b.raw)
    wait_ready(f"http://127.0.0.1:{port}/health", p, 10)
    return p, f"http://127.0.0.1:{port}"


def litellm_env(home):
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        # Offline: use the bundled model cost map instead of fetching it; no telemetry.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "NO_PROXY": "*",
    }


def litellm_config(b, name, upstream_url):
    d = os.path.join(b.raw, f"{name}-home")
    os.makedirs(d, exist_ok=True)
    cfg = os.path.join(d, "config.yaml")
    with open(cfg, "w") as f:
        f.write(
            "model_list:\n"
            f"  - model_name: {MODEL}\n"
            "    litellm_params:\n"
            f"      model: anthropic/{MODEL}\n"
            f"      api_base: {upstream_url}\n"
            f"      api_key: {CLIENT_KEY}\n"
            "litellm_settings:\n"
            "  drop_params: true\n"
            "  telemetry: false\n"
        )
    port = free_port()
    cmd = [os.path.join(b.a.litellm_venv, "bin", "litellm"), "--config", cfg, "--host", "127.0.0.1", "--port",
           str(port), "--num_workers", str(b.a.litellm_workers)]
    return d, port, cmd


def start_litellm(b, name, upstream_url):
    home, port, cmd = litellm_config(b, name, upstream_url)
    p = Proc(name, cmd, b.raw, env=litellm_env(home), cwd=home)
    wait_ready(f"http://127.0.0.1:{port}/health/liveliness", p, 180)
    return p, f"http://127.0.0.1:{port}"


def start_targets(b, phase, upstream, upstream_url):
    """{target: (Proc or None, base url)} for every target in this run."""
    t = {"direct": (upstream, upstream_url)}
    t["gateway"] = start_gateway(b, f"gateway-{phase}", upstream_url)
    t["bare"] = start_bare(b, f"bare-{phase}", upstream_url)
    if b.a.axum_ref and phase == "load":
        t["axum"] = start_axum(b, f"axum-{phase}", upstream_url)
    if b.a.litellm:
        t["litellm"] = start_litellm(b, f"litellm-{phase}", upstream_url)
    return t


def stop_targets(targets):
    for name, (p, _) in targets.items():
        if name != "direct" and p is not None:
            p.stop()


def headers_for(target, body):
    if body.startswith("openai"):
        return [f"authorization: Bearer {CLIENT_KEY}"]
    h = list(ANTHROPIC_HEADERS)
    if target in ("direct", "bare", "axum"):
        h.append(f"x-api-key: {CLIENT_KEY}")
    return h


def probe(b, target, base, body):
    """One request; None when the target answers 200, else why not (404 on the OpenAI route = not implemented)."""
    fname, path = BODIES[body]
    with open(os.path.join(b.bodies, fname), "rb") as f:
        data = f.read()
    hdrs = {"content-type": "application/json"}
    for h in headers_for(target, body):
        k, v = h.split(":", 1)
        hdrs[k.strip()] = v.strip()
    status, resp = http("POST", base + path, data, hdrs)
    if status == 200:
        return None
    if status == 404 and body.startswith("openai") and target == "gateway":
        return "n/a (not yet implemented)"
    return f"failed: status {status}: {resp[:200].decode(errors='replace')}"


# ---------------------------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------------------------
def phase_load(b):
    """Idle RSS, max throughput at each concurrency, latency at a fixed rate: fast upstream, non-streaming."""
    c = b.cfg
    up, up_url = start_upstream(b, "upstream-fast", 0, 20)
    b.upstream_pid = up.pid
    targets = start_targets(b, "load", up, up_url)
    time.sleep(1.0)
    idle = {name: rss_mb(p.pid) for name, (p, _) in targets.items()}
    b.results["scenarios"]["idle_rss_mb"] = {"unit": "MB", "values": idle,
                                             "note": "fresh process, 1 s after ready, before any request"}
    log(f"idle RSS (MB): {idle}")

    usable = {}
    for body in BODIES:
        for name, (p, base) in targets.items():
            why = probe(b, name, base, body)
            usable[(name, body)] = why
            if why:
                log(f"{name} {body}: {why}")

    tp = b.results["scenarios"].setdefault("throughput", {})
    for body, (fname, path) in BODIES.items():
        for conc in c["conc"]:
            key = f"{body} c{conc}"
            runs = {name: [] for name in targets}
            for rep in range(c["reps"]):
                for name, (p, base) in targets.items():
                    if usable[(name, body)]:
                        continue
                    watch = [("target", p.pid)] + ([("upstream", up.pid)] if name != "direct" else [])
                    threads = 2
                    if c["warm_secs"]:
                        b.wrk(base + path, fname, headers_for(name, body), conc, c["warm_secs"], threads)
                    r = b.wrk(base + path, fname, headers_for(name, body), conc, c["tp_secs"], threads, watch=watch)
                    runs[name].append(r)
                    log(f"throughput {key} {name} rep{rep}: {r.get('rps')} req/s, errors {r.get('errors')}, "
                        f"p99 {r.get('latency_ms', {}).get('p99')} ms, other busy {r.get('other_busy_pct')}%")
            tp[key] = {}
            for name in targets:
                if usable[(name, body)]:
                    tp[key][name] = {"skipped": usable[(name, body)]}
                    continue
                good = [r for r in runs[name] if "rps" in r]
                best = max(good, key=lambda r: r["rps"]) if good else {"error": runs[name][0].get("error")}
                tp[key][name] = dict(best, reps=[r.get("rps") for r in runs[name]])

    lat = b.results["scenarios"].setdefault("latency_fixed_rate", {})
    delay = int(round(c["lat_conns"] * 1000 / c["rate"]))
    for body, (fname, path) in BODIES.items():
        key = f"{body} @{c['rate']}/s"
        runs = {name: [] for name in targets}
        for rep in range(c["lat_reps"]):
            for name, (p, base) in targets.items():
                if usable[(name, body)]:
                    continue
                watch = [("target", p.pid)] + ([("upstream", up.pid)] if name != "direct" else [])
                r = b.wrk(base + path, fname, headers_for(name, body), c["lat_conns"], c["lat_secs"], 1, delay, watch)
                runs[name].append(r)
                log(f"latency {key} {name} rep{rep}: {r.get('rps')} req/s, p50 {r.get('latency_ms', {}).get('p50')} "
                    f"p99 {r.get('latency_ms', {}).get('p99')} ms, errors {r.get('errors')}, "
                    f"other busy {r.get('other_busy_pct')}%")
        lat[key] = {}
        for name in targets:
            if usable[(name, body)]:
                lat[key][name] = {"skipped": usable[(name, body)]}
                continue
            good = [r for r in runs[name] if "latency_ms" in r]
            # Outside load only ever adds latency: keep the least disturbed rep (lowest p99).
            best = min(good, key=lambda r: r["latency_ms"]["p99"]) if good else {"error": runs[name][0].get("error")}
            lat[key][name] = dict(best, reps_p99=[r.get("latency_ms", {}).get("p99") for r in runs[name]])

    after = {name: rss_mb(p.pid) for name, (p, _) in targets.items()}
    b.results["scenarios"]["rss_after_load_mb"] = {"unit": "MB", "values": after}
    stop_targets(targets)
    up.stop()


def phase_stream(b):
    """Streaming pass-through: upstream emits an event every sse_interval_ms; TTFB and per-event delivery delay."""
    c = b.cfg
    up, up_url = start_upstream(b, "upstream-stream", c["sse_interval_ms"], c["sse_deltas"])
    targets = start_targets(b, "stream", up, up_url)
    res = b.results["scenarios"].setdefault("streaming", {})
    cases = [
        ("anthropic-1k-stream", "anthropic-1k-stream.json", "/v1/messages", "anthropic-1k", "message_stop"),
        ("openai-1k-stream", "openai-1k-stream.json", "/v1/chat/completions", "openai-1k", "[DONE]"),
    ]
    for key, fname, path, kind, marker in cases:
        res[key] = {"upstream_interval_ms": c["sse_interval_ms"], "deltas": c["sse_deltas"]}
        runs = {name: [] for name in targets}
        for rep in range(c["sse_reps"]):
            for name, (p, base) in targets.items():
                why = probe(b, name, base, kind)
                if why:
                    runs[name].append({"skipped": why})
                    continue
                r = b.sse(base + path, fname, headers_for(name, kind), c["sse_requests"], c["sse_conc"], 60,
                          done_marker=marker)
                runs[name].append(r)
                log(f"stream {key} {name} rep{rep}: ttfb p50 {pick(r, 'ttfb_ms', 'p50')} "
                    f"event delivery p50 {pick(r, 'event_delivery_ms', 'p50')} p99 "
                    f"{pick(r, 'event_delivery_ms', 'p99')} ms, ok {r.get('ok')} errors {r.get('errors')}")
        for name in targets:
            good = [r for r in runs[name] if "ttfb_ms" in r and r.get("ok")]
            # The rep with the lower median delivery delay (least disturbed by other load).
            res[key][name] = (min(good, key=lambda r: r["event_delivery_ms"]["p50"]) if good else runs[name][0])
    stop_targets(targets)
    up.stop()


def phase_memory(b):
    """RSS with N concurrent slow streams (upstream emits an event every mem_interval_ms)."""
    c = b.cfg
    up, up_url = start_upstream(b, "upstream-slow", c["mem_interval_ms"], c["mem_deltas"])
    targets = start_targets(b, "memory", up, up_url)
    res = b.results["scenarios"].setdefault("rss_open_streams_mb", {"streams": c["mem_streams"], "values": {}})
    for name, (p, base) in targets.items():
        before = rss_mb(p.pid)
        r = b.sse(base + "/v1/messages", "anthropic-1k-stream.json", headers_for(name, "anthropic-1k"),
                  c["mem_streams"], c["mem_streams"], c["mem_timeout"], rss_pids=[p.pid])
        kb = r.get("rss_max_kb")
        at_peak = r.get("rss_at_peak_kb")
        res["values"][name] = {
            "rss_before_mb": before,
            "rss_max_mb": round(kb / 1024, 1) if kb else None,
            "peak_open_streams": r.get("peak_open_streams"),
            "rss_at_peak_open_mb": round(at_peak / 1024, 1) if at_peak else None,
            "ok": r.get("ok"),
            "errors": r.get("errors"),
            "first_error": r.get("first_error") or r.get("error"),
            "ttfb_ms": r.get("ttfb_ms"),
        }
        log(f"memory {name}: peak {res['values'][name]['rss_max_mb']} MB, {r.get('peak_open_streams')} streams open at once "
            f"(ok {r.get('ok')}, errors {r.get('errors')})")
        time.sleep(0.5)
    stop_targets(targets)
    up.stop()


def phase_startup(b):
    """Exec to first 200 on the health route, many runs (the gateway's account store is already set up)."""
    c = b.cfg
    up, up_url = start_upstream(b, "upstream-startup", 0, 1)
    res = b.results["scenarios"].setdefault("startup_ms", {})
    _, port, gw_cmd = gateway_config(b, "gateway-startup", up_url)
    cmds = {
        "gateway": (gw_cmd, f"http://127.0.0.1:{port}/health", c["startup_runs"], gateway_env(), 10000),
    }
    bport = free_port()
    cmds["bare"] = (bare_cmd(b, bport, up_url), f"http://127.0.0.1:{bport}/health", c["startup_runs"], None, 10000)
    if b.a.litellm:
        home, lport, lcmd = litellm_config(b, "litellm-startup", up_url)
        cmds["litellm"] = (lcmd, f"http://127.0.0.1:{lport}/health/liveliness", c["litellm_startup_runs"],
                           litellm_env(home), 180000)
    for name, (cmd, url, runs, env, timeout_ms) in cmds.items():
        full = [b.a.tool, "startup", "--url", url, "--runs", str(runs), "--timeout-ms", str(timeout_ms),
                "--idle-rss-ms", "1000", "--"] + cmd
        try:
            p = subprocess.run(full, capture_output=True, env=env, timeout=runs * timeout_ms / 1000 + 60)
            r = json.loads(p.stdout) if p.returncode == 0 else {"error": p.stderr.decode(errors="replace")[-400:]}
        except (subprocess.TimeoutExpired, json.JSONDecodeError) as e:
            r = {"error": str(e)}
        res[name] = r
        log(f"startup {name}: median {pick(r, 'ready_ms', 'p50')} ms over {r.get('runs')} runs "
            f"(failures {r.get('failures')}), idle RSS {r.get('idle_rss_kb')} KB")
    up.stop()


def phase_variants(b):
    """The gateway as built, and with one runtime knob changed at a time (no code change), next to the reference
    proxies on both runtime flavours: evidence for what to fix first. Best of the reps for each number."""
    c = b.cfg
    variants = {
        "gateway as built (server.worker_threads 1: current_thread)": {},
        "gateway, RUST_LOG=warn (no per-request log line)": {"RUST_LOG": "warn"},
        "gateway, LLM_GATEWAY_WORKER_THREADS=2 (multi_thread)": {"LLM_GATEWAY_WORKER_THREADS": "2"},
    }
    if b.a.smoke:  # keep the smoke run short: one gateway variant and one reference
        variants = dict(list(variants.items())[:1])
    up, up_url = start_upstream(b, "upstream-variants", 0, 20)
    sup, sup_url = start_upstream(b, "upstream-variants-stream", c["sse_interval_ms"], c["sse_deltas"])
    procs = {}
    for i, (name, extra) in enumerate(variants.items()):
        for kind, url in (("fast", up_url), ("stream", sup_url)):
            cfg, port, cmd = gateway_config(b, f"variant{i}-{kind}", url)
            p = Proc(f"variant{i}-{kind}", cmd, b.raw, env=dict(gateway_env(), **extra))
            wait_ready(f"http://127.0.0.1:{port}/health", p, 30)
            procs[(name, kind)] = (p, f"http://127.0.0.1:{port}")
    refs = {"bare hyper proxy, multi_thread (2 workers)": [], "bare hyper proxy, current_thread": ["--current-thread"]}
    if b.a.smoke:
        refs = dict(list(refs.items())[:1])
    if b.a.axum_ref:
        refs["axum+reqwest proxy, multi_thread (2 workers)"] = []
        refs["axum+reqwest proxy, current_thread"] = ["--current-thread"]
    for name, flags in refs.items():
        sub = "axum-proxy" if name.startswith("axum") else "proxy"
        for kind, url in (("fast", up_url), ("stream", sup_url)):
            port = free_port()
            p = Proc(f"ref-{sub}-{len(flags)}-{kind}", [b.a.tool, sub, "--listen", f"127.0.0.1:{port}", "--upstream",
                                                       url, "--api-key", CLIENT_KEY] + flags, b.raw)
            wait_ready(f"http://127.0.0.1:{port}/health", p, 10)
            procs[(name, kind)] = (p, f"http://127.0.0.1:{port}")
    names = list(variants) + list(refs)
    runs = {n: [] for n in names}
    delay = int(round(c["lat_conns"] * 1000 / c["rate"]))
    for rep in range(c["reps"]):
        for n in names:
            p, base = procs[(n, "fast")]
            h = headers_for("direct" if not n.startswith("gateway") else "gateway", "anthropic-1k")
            if c["warm_secs"]:
                b.wrk(base + "/v1/messages", "anthropic-1k.json", h, 16, c["warm_secs"], 2)
            tp = b.wrk(base + "/v1/messages", "anthropic-1k.json", h, 16, c["tp_secs"], 2, watch=[("target", p.pid)])
            lat = b.wrk(base + "/v1/messages", "anthropic-1k.json", h, c["lat_conns"], c["lat_secs"], 1, delay)
            p, base = procs[(n, "stream")]
            st = b.sse(base + "/v1/messages", "anthropic-1k-stream.json", h, max(6, c["sse_requests"] * 2 // 3),
                       c["sse_conc"], 60)
            runs[n].append({"tp": tp, "lat": lat, "sse": st})
            log(f"variant {n} rep{rep}: {tp.get('rps')} req/s, {tp.get('cpu_us_per_req', {}).get('target')} µs CPU/req, "
                f"@{c['rate']}/s p50 {lat.get('latency_ms', {}).get('p50')} ms, stream delivery p99 "
                f"{pick(st, 'event_delivery_ms', 'p99')} ms")
    out = {}
    for n in names:
        rs = runs[n]

        def best(f, hi):
            vals = [v for v in (f(r) for r in rs) if isinstance(v, (int, float))]
            return (max(vals) if hi else min(vals)) if vals else None
        out[n] = {
            "rps_c16": best(lambda r: r["tp"].get("rps"), True),
            "cpu_us_per_req": best(lambda r: r["tp"].get("cpu_us_per_req", {}).get("target"), False),
            "lat_p50_ms": best(lambda r: r["lat"].get("latency_ms", {}).get("p50"), False),
            "lat_p99_ms": best(lambda r: r["lat"].get("latency_ms", {}).get("p99"), False),
            "stream_ttfb_p50_ms": best(lambda r: pick(r["sse"], "ttfb_ms", "p50"), False),
            "stream_delivery_p99_ms": best(lambda r: pick(r["sse"], "event_delivery_ms", "p99"), False),
            "errors": sum((r["tp"].get("errors") or 0) + (r["lat"].get("errors") or 0) + (r["sse"].get("errors") or 0)
                          for r in rs),
        }
    b.results["scenarios"]["variants"] = {"body": "anthropic-1k", "rate": c["rate"], "values": out}
    for (n, kind), (p, _) in procs.items():
        p.stop()
    up.stop()
    sup.stop()


USAGE_VARIANTS = {
    "recording on (default)": "",
    "usage.enabled: false": "usage: {enabled: false}\n",
    # A queue of 16 in front of a writer that drains every 200 ms: nearly every record of a burst is dropped
    # (and counted). The request path must not notice.
    "recording on, usage.queue_capacity: 16": "usage: {queue_capacity: 16}\n",
}


def metric(base, name):
    """A counter's value from the gateway's /metrics (sum over labels), or None."""
    status, body = http("GET", base + "/metrics")
    if status != 200:
        return None
    total = None
    for line in body.decode(errors="replace").splitlines():
        if line.startswith(name + "_total") or line.startswith(name + "{") or line.startswith(name + " "):
            total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
    return total


def settle(bases, deadline_secs=30):
    """Waits until every gateway's usage writer has written its backlog (its written count stops moving), then
    flushes the page cache, so the next measurement does not pay for the previous one's writes."""
    end = time.time() + deadline_secs
    last = None
    while time.time() < end:
        now = [metric(b, "llm_gateway_usage_records_written") for b in bases]
        if now == last:
            break
        last = now
        time.sleep(0.5)
    os.sync()


def phase_usage(b):
    """Usage recording's cost: the gateway with recording on, off, and on with a queue so small that records are
    dropped, side by side in one run, the variants interleaved rep by rep (the bar compares on with off: throughput
    within 3 %, p99 at a fixed rate within 0.05 ms). Medians over the reps. Each latency run starts on a settled
    machine: every writer's backlog written and the page cache flushed (a saturation run writes ~150,000 records,
    whose disk writeback would otherwise land in the next measurement, whichever gateway it is)."""
    c = b.cfg
    reps = 2 if b.a.smoke else 5
    # p99 of a 6 s run at 200/s is its 12th-slowest request: too few to see 0.05 ms. The bar's runs are longer.
    lat_secs = c["lat_secs"] if b.a.smoke else 20
    up, up_url = start_upstream(b, "upstream-usage", 0, 20)
    sup, sup_url = start_upstream(b, "upstream-usage-stream", c["sse_interval_ms"], c["sse_deltas"])
    procs = {}
    for i, (name, extra) in enumerate(USAGE_VARIANTS.items()):
        for kind, url in (("fast", up_url), ("stream", sup_url)):
            cfg, port, cmd = gateway_config(b, f"usage{i}-{kind}", url, extra)
            p = Proc(f"usage{i}-{kind}", cmd, b.raw, env=gateway_env())
            wait_ready(f"http://127.0.0.1:{port}/health", p, 30)
            procs[(name, kind)] = (p, f"http://127.0.0.1:{port}")
    h = headers_for("gateway", "anthropic-1k")
    delay = int(round(c["lat_conns"] * 1000 / c["rate"]))
    runs = {n: [] for n in USAGE_VARIANTS}
    names = list(USAGE_VARIANTS)
    every = [base for (_, base) in procs.values()]
    for rep in range(reps):
        # Steady moderate load (the p99 bar), on a settled machine, every variant at the same time: what the
        # machine does meanwhile (other processes, the kernel) lands on all of them alike, so their differences
        # are the variants'. Then streams, then saturation one variant at a time (sharing the CPU would hide cost).
        settle(every)
        lats = {}

        def lat_run(n):
            lats[n] = b.wrk(procs[(n, "fast")][1] + "/v1/messages", "anthropic-1k.json", h, c["lat_conns"], lat_secs, 1,
                            delay)
        threads = [threading.Thread(target=lat_run, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        order = names[rep % len(names):] + names[:rep % len(names)]
        for n in order:
            p, base = procs[(n, "fast")]
            sp, sbase = procs[(n, "stream")]
            st = b.sse(sbase + "/v1/messages", "anthropic-1k-stream.json", h, max(6, c["sse_requests"] // 2),
                       c["sse_conc"], 60)
            settle(every)
            if c["warm_secs"]:
                b.wrk(base + "/v1/messages", "anthropic-1k.json", h, 16, c["warm_secs"], 2)
            tp = b.wrk(base + "/v1/messages", "anthropic-1k.json", h, 16, c["tp_secs"], 2, watch=[("target", p.pid)])
            lat = lats[n]
            runs[n].append({"tp": tp, "lat": lat, "sse": st})
            log(f"usage {n} rep{rep}: {tp.get('rps')} req/s, {tp.get('cpu_us_per_req', {}).get('target')} µs CPU/req, "
                f"@{c['rate']}/s p99 {lat.get('latency_ms', {}).get('p99')} ms, stream TTFB p50 "
                f"{pick(st, 'ttfb_ms', 'p50')} ms")
    out = {}
    for n in names:
        rs = runs[n]

        def median(f):
            vals = sorted(v for v in (f(r) for r in rs) if isinstance(v, (int, float)))
            return vals[len(vals) // 2] if vals else None
        p, base = procs[(n, "fast")]
        out[n] = {
            "rps_c16": median(lambda r: r["tp"].get("rps")),
            "cpu_us_per_req": median(lambda r: r["tp"].get("cpu_us_per_req", {}).get("target")),
            "lat_p50_ms": median(lambda r: r["lat"].get("latency_ms", {}).get("p50")),
            "lat_p99_ms": median(lambda r: r["lat"].get("latency_ms", {}).get("p99")),
            "stream_ttfb_p50_ms": median(lambda r: pick(r["sse"], "ttfb_ms", "p50")),
            "stream_delivery_p99_ms": median(lambda r: pick(r["sse"], "event_delivery_ms", "p99")),
            "errors": sum((r["tp"].get("errors") or 0) + (r["lat"].get("errors") or 0) + (r["sse"].get("errors") or 0)
                          for r in rs),
            "records_written": metric(base, "llm_gateway_usage_records_written"),
            "records_dropped": metric(base, "llm_gateway_usage_records_dropped"),
            "requests_counted": metric(base, "llm_gateway_requests"),
            "reps": rs and [{"rps": r["tp"].get("rps"), "p99": r["lat"].get("latency_ms", {}).get("p99")} for r in rs],
        }
    on, off = out[names[0]], out[names[1]]
    # The paired differences: each rep's on-vs-off p99 (measured at the same time) and throughput ratio.
    pairs = list(zip(runs[names[0]], runs[names[1]]))
    p99_diffs = sorted(a["lat"]["latency_ms"]["p99"] - b_["lat"]["latency_ms"]["p99"] for a, b_ in pairs
                       if "latency_ms" in a["lat"] and "latency_ms" in b_["lat"])
    tp_ratios = sorted(a["tp"]["rps"] / b_["tp"]["rps"] for a, b_ in pairs if a["tp"].get("rps") and b_["tp"].get("rps"))
    bar = {"p99_diffs_ms": [round(d, 3) for d in p99_diffs], "throughput_ratios": [round(r, 3) for r in tp_ratios]}
    if tp_ratios:
        bar["throughput_ratio"] = round(tp_ratios[len(tp_ratios) // 2], 4)
        bar["throughput_ok"] = bar["throughput_ratio"] >= 0.97
    if p99_diffs:
        bar["p99_added_ms"] = round(p99_diffs[len(p99_diffs) // 2], 3)
        bar["p99_ok"] = bar["p99_added_ms"] <= 0.05
    b.results["scenarios"]["usage"] = {"body": "anthropic-1k", "rate": c["rate"], "reps": reps, "values": out,
                                       "bar": bar}
    for (n, kind), (p, _) in procs.items():
        p.stop()
    up.stop()
    sup.stop()


def usage_table(b):
    v = b.results["scenarios"].get("usage")
    if not v:
        return ""
    head = ["usage variant (anthropic-1k)", "req/s at c16", "CPU µs/req", f"p50 @{v['rate']}/s (ms)",
            f"p99 @{v['rate']}/s (ms)", "stream TTFB p50 (ms)", "stream event delay p99 (ms)", "records written",
            "records dropped"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, r in v["values"].items():
        lines.append("| " + " | ".join([n, fmt(r["rps_c16"], 0), fmt(r["cpu_us_per_req"], 0), fmt(r["lat_p50_ms"], 3),
                                         fmt(r["lat_p99_ms"], 3), fmt(r["stream_ttfb_p50_ms"], 3),
                                         fmt(r["stream_delivery_p99_ms"], 3), fmt(r["records_written"], 0),
                                         fmt(r["records_dropped"], 0)]) + " |")
    bar = v.get("bar", {})
    lines.append("")
    lines.append(f"Recording on vs off, medians of {v['reps']} reps: throughput ratio {bar.get('throughput_ratio', '–')} "
                 f"(bar ≥ 0.97; per rep {bar.get('throughput_ratios')}), p99 added at {v['rate']}/s "
                 f"{bar.get('p99_added_ms', '–')} ms (bar ≤ 0.05 ms; per rep, measured side by side: "
                 f"{bar.get('p99_diffs_ms')}).")
    return "\n".join(lines)


def variants_table(b):
    v = b.results["scenarios"].get("variants")
    if not v:
        return ""
    head = ["variant (anthropic-1k)", "req/s at c16", "CPU µs/req", f"p50 @{v['rate']}/s (ms)",
            f"p99 @{v['rate']}/s (ms)", "stream TTFB p50 (ms)", "stream event delay p99 (ms)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, r in v["values"].items():
        lines.append("| " + " | ".join([n, fmt(r["rps_c16"], 0), fmt(r["cpu_us_per_req"], 0), fmt(r["lat_p50_ms"], 3),
                                         fmt(r["lat_p99_ms"], 3), fmt(r["stream_ttfb_p50_ms"], 3),
                                         fmt(r["stream_delivery_p99_ms"], 3)]) + " |")
    return "\n".join(lines)


def pick(r, k, q):
    v = (r or {}).get(k)
    return v.get(q) if isinstance(v, dict) else None


# ---------------------------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------------------------
def fmt(v, nd=1):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    return f"{v:.{nd}f}"


def ratio(a, b, nd=2):
    if a is None or b in (None, 0):
        return "–"
    r = a / b
    return f"{r:.4f}" if abs(r) < 0.1 else f"{r:.{nd}f}"


def summarize(b):
    s = b.results["scenarios"]
    rows = []
    shown = [t for t in TARGETS if t != "axum" or b.a.axum_ref]
    others = [t for t in shown if t != "direct"]
    head = (["scenario"] + [LABEL[t] for t in shown] + [f"{LABEL[t].split()[0]}/direct" for t in others]
            + ["gateway/bare"])

    def cell(d, name, f):
        v = d.get(name)
        if v is None:
            return None
        if "skipped" in v:
            return v["skipped"]
        if "error" in v and f(v) is None:
            return "failed"
        return f(v)

    def add(label, d, f, nd=1, diff=False, unit="", rel_cols=True):
        vals = {n: cell(d, n, f) for n in shown}
        num = {n: v if isinstance(v, (int, float)) else None for n, v in vals.items()}
        if diff:  # latency: the time added over direct (ms) instead of a ratio
            def rel(x, base):
                return "–" if x is None or base is None else f"{x - base:+.{max(nd, 2)}f}"
        else:
            rel = ratio
        rels = [rel(num[t], num["direct"]) for t in others] + [rel(num["gateway"], num["bare"])]
        if not rel_cols:
            rels = [""] * len(rels)
        rows.append([label] + [fmt(vals[n], nd) if vals[n] is not None else "–" for n in shown] + rels)

    for key, d in s.get("throughput", {}).items():
        add(f"throughput {key} (req/s)", d, lambda v: v.get("rps"), 0)
    for key, d in s.get("throughput", {}).items():
        add(f"CPU per request {key} (µs, proxy process)", d, lambda v: v.get("cpu_us_per_req", {}).get("target"), 0)
    for key, d in s.get("latency_fixed_rate", {}).items():
        for q in ("p50", "p90", "p99"):
            add(f"latency {key} {q} (ms; added)", d, lambda v, q=q: v.get("latency_ms", {}).get(q), 3, diff=True)
    for key, d in s.get("streaming", {}).items():
        dd = {k: v for k, v in d.items() if isinstance(v, dict)}
        add(f"stream {key} TTFB p50 (ms; added)", dd, lambda v: pick(v, "ttfb_ms", "p50"), 3, diff=True)
        add(f"stream {key} TTFB p99 (ms; added)", dd, lambda v: pick(v, "ttfb_ms", "p99"), 3, diff=True)
        add(f"stream {key} event delivery p50 (ms; added)", dd, lambda v: pick(v, "event_delivery_ms", "p50"), 3,
            diff=True)
        add(f"stream {key} event delivery p99 (ms; added)", dd, lambda v: pick(v, "event_delivery_ms", "p99"), 3,
            diff=True)
        add(f"stream {key} event delivery max (ms; added)", dd, lambda v: pick(v, "event_delivery_ms", "max"), 3,
            diff=True)
    if "idle_rss_mb" in s:
        d = {n: {"v": v} for n, v in s["idle_rss_mb"]["values"].items()}
        add("idle RSS (MB; direct = the mock upstream)", d, lambda v: v["v"], 1)
    if "rss_open_streams_mb" in s:
        m = s["rss_open_streams_mb"]
        add(f"peak RSS, {m['streams']} concurrent slow streams (MB; direct = the mock upstream)", m["values"],
            lambda v: v.get("rss_max_mb"), 1)
        add("streams open at once at that peak", m["values"], lambda v: v.get("peak_open_streams"), 0,
            rel_cols=False)
    if "startup_ms" in s:
        add("start-up to ready, median (ms)", s["startup_ms"], lambda v: pick(v, "ready_ms", "p50"), 1)

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def bars(b):
    """design.md §4 bars, evaluated on this run's numbers."""
    s = b.results["scenarios"]
    out = []

    def g(d, name, f):
        try:
            v = d[name]
            return None if "skipped" in v else f(v)
        except (KeyError, TypeError):
            return None

    for key, d in s.get("latency_fixed_rate", {}).items():
        if key.startswith("openai"):
            continue
        gw, di = g(d, "gateway", lambda v: v["latency_ms"]["p99"]), g(d, "direct", lambda v: v["latency_ms"]["p99"])
        if gw is not None and di is not None:
            out.append({"bar": f"p99 added over direct ≤ 0.5 ms ({key})", "value_ms": round(gw - di, 3),
                        "holds": gw - di <= 0.5})
    for key, d in s.get("throughput", {}).items():
        gw, bare = g(d, "gateway", lambda v: v["rps"]), g(d, "bare", lambda v: v["rps"])
        if gw is not None and bare:
            out.append({"bar": f"throughput ≥ 90 % of bare proxy ({key})", "value": round(gw / bare, 3),
                        "holds": gw / bare >= 0.9})
    for key, d in s.get("streaming", {}).items():
        if key.startswith("openai"):
            continue
        gw, di = g(d, "gateway", lambda v: v["ttfb_ms"]["p50"]), g(d, "direct", lambda v: v["ttfb_ms"]["p50"])
        if gw is not None and di is not None:
            out.append({"bar": f"stream first byte within 1 ms of upstream's ({key}, p50)",
                        "value_ms": round(gw - di, 3), "holds": gw - di <= 1.0})
        gw = g(d, "gateway", lambda v: v["event_delivery_ms"]["p99"])
        di = g(d, "direct", lambda v: v["event_delivery_ms"]["p99"])
        if gw is not None and di is not None:
            half = d.get("upstream_interval_ms", 20) / 2
            out.append({"bar": f"no chunk held back ({key}: p99 event delay added < half the event interval)",
                        "value_ms": round(gw - di, 3), "holds": gw - di < half})
    idle = s.get("idle_rss_mb", {}).get("values", {}).get("gateway")
    if idle is not None:
        out.append({"bar": "idle RSS ≤ 20 MB", "value_mb": idle, "holds": idle <= 20})
    m = s.get("rss_open_streams_mb", {})
    v = m.get("values", {}).get("gateway", {})
    if v.get("rss_max_mb") is not None:
        out.append({"bar": f"RSS with {m['streams']} open streams ≤ 150 MB", "value_mb": v["rss_max_mb"],
                    "peak_open_streams": v.get("peak_open_streams"),
                    "holds": v["rss_max_mb"] <= 150 and (v.get("peak_open_streams") or 0) >= m["streams"]})
    u = s.get("usage", {}).get("bar", {})
    if "throughput_ratio" in u:
        out.append({"bar": "usage recording on ≥ 97 % of off's throughput (same run)", "value": u["throughput_ratio"],
                    "holds": u["throughput_ok"]})
    if "p99_added_ms" in u:
        out.append({"bar": "usage recording adds ≤ 0.05 ms p99 (same run)", "value_ms": u["p99_added_ms"],
                    "holds": u["p99_ok"]})
    st = s.get("startup_ms", {}).get("gateway")
    if st and pick(st, "ready_ms", "p50") is not None:
        med = pick(st, "ready_ms", "p50")
        out.append({"bar": "start-up to ready ≤ 100 ms (median)", "value_ms": med, "holds": med <= 100})
    return out


def write_summary(b, a):
    table = summarize(b)
    vt = variants_table(b)
    if vt:
        table += ("\n\nGateway variants (runtime knobs, no code change) and the reference proxies on both runtime "
                  "flavours:\n\n" + vt)
    ut = usage_table(b)
    if ut:
        table += "\n\nUsage recording on and off (same run):\n\n" + ut
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(b.results, f, indent=1, sort_keys=False)
    bar_lines = "\n".join(
        f"- {'HOLDS' if x['holds'] else 'FAILS'}: {x['bar']} — "
        + ", ".join(f"{k} {v}" for k, v in x.items() if k not in ("bar", "holds"))
        for x in b.results["bars"]
    )
    meta = b.results["meta"]
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write(f"Run {meta['started']} ({meta['mode']}, git {meta['git']}, {meta.get('duration_secs')} s)\n\n"
                f"{table}\n\n{bar_lines}\n")
    print()
    print(table)
    print()
    if a.smoke:
        print("(smoke run: seconds per scenario and possibly a debug build; the bars below are not meaningful)")
    print(bar_lines)
    print(f"\nresults: {os.path.join(a.out, 'summary.json')} and summary.md (raw output in {os.path.join(a.out, 'raw')})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--tool", required=True)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--wrk", required=True)
    ap.add_argument("--litellm-venv", default="")
    ap.add_argument("--litellm-workers", type=int, default=2)
    ap.add_argument("--axum-ref", action="store_true", help="gwbench has the axum-proxy subcommand")
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="load,stream,memory,startup,variants,usage")
    ap.add_argument("--summarize-only", action="store_true", help="rewrite OUT/summary.md from OUT/summary.json")
    a = ap.parse_args()
    a.litellm = bool(a.litellm_venv)
    if a.summarize_only:
        b = Bench.__new__(Bench)
        b.a = a
        with open(os.path.join(a.out, "summary.json")) as f:
            b.results = json.load(f)
        a.axum_ref = a.axum_ref or b.results["meta"].get("axum_ref", "axum" in json.dumps(b.results["scenarios"].get(
            "throughput", {})))
        a.smoke = b.results["meta"]["mode"] == "smoke"
        b.results["bars"] = bars(b)
        write_summary(b, a)
        return
    cfg = SMOKE if a.smoke else FULL
    os.makedirs(a.out, exist_ok=True)
    b = Bench(a, cfg)
    started = time.time()
    b.results["meta"] = {
        "mode": "smoke" if a.smoke else "full",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "config": cfg,
        "gateway_bin": a.gateway,
        "litellm": a.litellm,
        "litellm_workers": a.litellm_workers if a.litellm else None,
        "axum_ref": a.axum_ref,
        "git": subprocess.run(["git", "-C", HERE, "describe", "--always", "--dirty"], capture_output=True,
                              text=True).stdout.strip(),
    }
    phases = {"load": phase_load, "stream": phase_stream, "memory": phase_memory, "startup": phase_startup,
              "variants": phase_variants, "usage": phase_usage}
    failed = []
    for name in a.only.split(","):
        log(f"phase {name}")
        try:
            phases[name](b)
        except Exception as e:  # a crash is recorded and fails the run; the other phases still run
            log(f"phase {name} FAILED: {e!r}")
            failed.append(f"{name}: {e!r}")
            stop_all()
    b.results["meta"]["duration_secs"] = round(time.time() - started, 1)
    b.results["meta"]["failed_phases"] = failed
    b.results["bars"] = bars(b)
    write_summary(b, a)
    if failed:
        print("FAILED phases: " + "; ".join(failed), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
