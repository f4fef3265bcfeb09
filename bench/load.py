"""The studio under load, and its server-side latency: are the bars met on this CPU?

    flock /tmp/digit_cpu.lock python bench/load.py [--requests 8:45,16:40] [--repeats 30]

1. Server time, in process (the same `Studio.analyze` + `render` calls the app makes, on an idle CPU): the
   full analysis of the 6-digit example (reading, a Grad-CAM map with faithfulness scores for every digit,
   atypicality, 4 VAE variations each, and rendering the galleries and the overlay), and reading alone.
2. Load: `python demo.py` on a free loopback port; for each level, that many concurrent gradio_client
   clients (one thread each) send their share of the requests, alternating `/read` and `/analyze` over the
   example drawings. Latency is client-side (upload, queue, compute, answer); errors are any exception.
   The server's resident memory (VmRSS from /proc/<pid>/status) is read after a warm-up (two requests from
   each of as many clients as the busiest level has) and after all requests.

Bars: zero errors; memory growth < 50 MB over >= 1,000 requests; full analysis median <= 250 ms and
reading alone <= 50 ms. Writes results/bench/load.json.
"""

from __future__ import annotations

import json
import platform
import statistics
import threading
import time
from pathlib import Path

import torch

from digit_studio import cli
from digit_studio.cli import run_script
from digit_studio.errors import DigitStudioError
from digit_studio.research.server import running_studio
from digit_studio.studio.analysis import Studio
from digit_studio.studio.render import render

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "bench" / "load.json"
EXAMPLES = sorted((ROOT / "examples").glob("*.png"))
SIX_DIGITS = ROOT / "examples" / "314159.png"
BARS = {"memory_growth_mb": 50, "analysis_median_ms": 250, "read_median_ms": 50}


def median_ms(fn, repeats: int) -> tuple[float, float]:
    """Median and 95th percentile of `repeats` timed calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - started))
    return round(statistics.median(times), 1), round(statistics.quantiles(times, n=20)[-1], 1)


def server_time(repeats: int) -> dict:
    studio = Studio.from_checkpoints()
    image = str(SIX_DIGITS)
    if studio.read(image).text != "314159":
        raise DigitStudioError(f"{SIX_DIGITS.name} is no longer read as 314159; regenerate examples/")
    analysis_median, analysis_p95 = median_ms(lambda: render(studio.analyze(image, "gradcam", variations=4)), repeats)
    read_median, read_p95 = median_ms(lambda: studio.read(image), repeats)
    stages = [studio.analyze(image, "gradcam", variations=4).timings_ms for _ in range(repeats)]
    return {
        "drawing": SIX_DIGITS.name, "digits": 6, "repeats": repeats, "method": "gradcam", "variations": 4,
        "analysis_median": analysis_median, "analysis_p95": analysis_p95,
        "read_median": read_median, "read_p95": read_p95,
        "analysis_stages_median": {k: round(statistics.median(t[k] for t in stages), 1) for k in stages[0]},
    }


def run_level(url: str, clients: int, per_client: int) -> dict:
    """`clients` threads, each with its own gradio_client, sending `per_client` requests."""
    from gradio_client import Client, handle_file

    latencies: dict[str, list[float]] = {"/read": [], "/analyze": []}
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(index: int) -> None:
        try:
            connection = Client(url, verbose=False)
        except Exception as exc:  # noqa: BLE001 - every failure counts as an error
            with lock:
                errors.append(f"connect: {exc}")
            return
        start.wait()
        for k in range(per_client):
            endpoint = "/read" if (index + k) % 2 == 0 else "/analyze"
            drawing = handle_file(str(EXAMPLES[(index + k) % len(EXAMPLES)]))
            began = time.perf_counter()
            try:
                result = connection.predict(drawing, api_name=endpoint)
                ok = isinstance(result, dict) and result.get("text")
            except Exception as exc:  # noqa: BLE001
                ok, result = False, exc
            elapsed = 1000 * (time.perf_counter() - began)
            with lock:
                latencies[endpoint].append(elapsed)
                if not ok:
                    errors.append(f"{endpoint}: {str(result)[:200]}")

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - began

    def summary(values: list[float]) -> dict:
        if len(values) < 2:
            return {"requests": len(values)}
        return {"requests": len(values), "p50_ms": round(statistics.median(values), 1),
                "p95_ms": round(statistics.quantiles(values, n=20)[-1], 1)}

    every = latencies["/read"] + latencies["/analyze"]
    return {"clients": clients, "requests": len(every), "errors": len(errors), "error_samples": errors[:5],
            "seconds": round(seconds, 1), "requests_per_s": round(len(every) / seconds, 2),
            "all": summary(every), "read": summary(latencies["/read"]), "analyze": summary(latencies["/analyze"])}


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--requests", default="8:45,16:40", help="clients:requests_per_client for each level")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls for the in-process server time")
    args = parser.parse_args()
    levels = [tuple(int(v) for v in level.split(":")) for level in args.requests.split(",")]
    started = time.perf_counter()
    server_ms = server_time(args.repeats)
    print(json.dumps(server_ms))
    with running_studio() as server:
        url = server.url
        # Warm-up at the highest concurrency: the first requests start the server's worker threads and fill
        # its buffers once; what grows after that is what more requests cost.
        run_level(url, max(clients for clients, _ in levels), 2)
        before = server.rss_mb()
        results = []
        for clients, per_client in levels:
            results.append(run_level(url, clients, per_client))
            print(json.dumps({k: v for k, v in results[-1].items() if k != "error_samples"}))
        after = server.rss_mb()
    total = sum(r["requests"] for r in results)
    memory = {"before_mb": round(before, 1), "after_mb": round(after, 1), "growth_mb": round(after - before, 1),
              "requests_between": total}
    report = {
        "machine": {"cpu": platform.machine(), "cores": torch.get_num_threads(), "torch": torch.__version__},
        "server_ms": server_ms,
        "load": results,
        "memory": memory,
        "bars": {
            "zero_errors": all(r["errors"] == 0 for r in results),
            "memory_growth_under_50mb_over_1000_requests":
                total >= 1000 and memory["growth_mb"] < BARS["memory_growth_mb"],
            "analysis_median_at_most_250ms": server_ms["analysis_median"] <= BARS["analysis_median_ms"],
            "read_median_at_most_50ms": server_ms["read_median"] <= BARS["read_median_ms"],
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["memory"]), json.dumps(report["bars"]))


if __name__ == "__main__":
    run_script(main)
