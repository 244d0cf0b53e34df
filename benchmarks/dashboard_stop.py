"""How long ``automl-noisy dashboard`` takes to exit after SIGINT or SIGTERM (goal: within 2 s).

A small study is made with a real search (synthetic data, the quick space, in-process trials). Then,
``--stops`` times, the dashboard is started on it, a signal is sent at one of three moments, and the
time from the signal to the process's exit is measured:

- idle: no request since the dashboard answered its first;
- loading: a client loads what a browser loads (the page, its script bundle, the study list, the
  study) back to back, and the signal is sent after a varying number of responses, so that it most
  often lands while a response is being written;
- held: a connection is open with half a request sent.

Signals alternate between SIGINT and SIGTERM. Prints a table and rewrites the ``dashboard-stop``
section of BENCHMARKS.md (``--quick``: 4 stops, prints only).

    .venv/bin/python benchmarks/dashboard_stop.py
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from _common import busy_cores, fmt, machine, table, write_section

GOAL_SECONDS = 2.0
MOMENTS = ("idle", "loading", "held")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load_pages(port: int, loads: list[int], stop: threading.Event) -> None:
    """Load the dashboard's page, bundle, study list and study back to back until the server is gone."""
    base = f"http://127.0.0.1:{port}"
    urls = [f"{base}/dashboard", f"{base}/static/bundle.js", f"{base}/api/studies", f"{base}/api/studies/1"]
    while not stop.is_set():
        for url in urls:
            try:
                request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
            except OSError:
                return
            loads[0] += 1


def one_stop(exe: str, storage: str, moment: str, sig: int, after_loads: int) -> dict:
    port = _free_port()
    proc = subprocess.Popen([exe, "dashboard", "--storage", storage, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while proc.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=30).read()
            break
        except OSError:
            time.sleep(0.05)
    loads, stop, held = [0], threading.Event(), None
    if moment == "loading":
        threading.Thread(target=_load_pages, args=(port, loads, stop), daemon=True).start()
        while loads[0] < after_loads and proc.poll() is None:
            time.sleep(0.001)
    elif moment == "held":
        held = socket.create_connection(("127.0.0.1", port))
        held.sendall(b"GET /api/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
        seconds = time.monotonic() - sent
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        seconds = float("inf")
    stop.set()
    if held is not None:
        held.close()
    return {"moment": moment, "signal": signal.Signals(sig).name, "seconds": seconds,
            "code": proc.returncode, "traceback": "Traceback" in err}


def make_study(folder: Path, exe: str) -> str:
    storage = f"sqlite:///{folder}/study.db"
    subprocess.run([exe, "search", "--data", "synthetic", "--samples", "300", "--space", "quick", "--trials", "4",
                    "--executor", "local", "--storage", storage, "--no-progress"], check=True,
                   stdout=subprocess.DEVNULL)
    return storage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stops", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="4 stops, print only")
    args = parser.parse_args()
    stops = 4 if args.quick else args.stops
    busy = busy_cores()
    exe = str(Path(sys.executable).with_name("automl-noisy"))
    with tempfile.TemporaryDirectory() as tmp:
        storage = make_study(Path(tmp), exe)
        runs = []
        for i in range(stops):
            moment = MOMENTS[i % len(MOMENTS)]
            sig = (signal.SIGINT, signal.SIGTERM)[(i // len(MOMENTS)) % 2]
            runs.append(one_stop(exe, storage, moment, sig, after_loads=1 + 3 * i))
            print(json.dumps(runs[-1]), flush=True)
    rows = []
    for moment in MOMENTS:
        for name in ("SIGINT", "SIGTERM"):
            mine = [r for r in runs if r["moment"] == moment and r["signal"] == name]
            if not mine:
                continue
            seconds = [r["seconds"] for r in mine]
            rows.append([moment, name, str(len(mine)), fmt(statistics.median(seconds), 2), fmt(max(seconds), 2),
                         f"{sum(s <= GOAL_SECONDS for s in seconds)}/{len(mine)}",
                         f"{sum(r['code'] == 0 for r in mine)}/{len(mine)}",
                         str(sum(r["traceback"] for r in mine))])
    text = table(["moment", "signal", "stops", "median s", "max s", f"<= {GOAL_SECONDS:g} s", "exit 0",
                  "tracebacks"], rows)
    print(text)
    if args.quick:
        return
    body = f"""## Dashboard stop on SIGINT and SIGTERM (`benchmarks/dashboard_stop.py`)

{machine()}. Other load when the run started: {busy:.2f} cores busy.

**Method.** `automl-noisy dashboard` on a 4-trial study is started {stops} times and sent one signal
each time, alternating SIGINT and SIGTERM: idle; while a client loads the page, its script bundle,
the study list and the study back to back (the signal goes after 1, 4, 7, ... responses, most often
in the middle of a response); or with a connection held open with half a request. Seconds from the
signal to the process's exit (the goal is {GOAL_SECONDS:g} s; requests in flight get up to 1 s to finish).

{text}
"""
    write_section("dashboard-stop", body)
    print("\nwrote the dashboard-stop section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
