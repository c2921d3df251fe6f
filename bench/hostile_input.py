"""What hostile input costs: a slow-drip server and a huge JPEG, bounded against unbounded.

    python bench/hostile_input.py [--timeout 2] [--drip-bytes 8] [--side 7000]

Side by side in one run:

- **slow drip**: a local server sends an image's headers, then one byte per second. The guarded
  transport (total deadline = the timeout) against a plain ``requests`` download with the same
  per-read timeout (what monitor did before the deadline): seconds a worker is held.
- **huge JPEG**: a small JPEG declaring ``side`` x ``side`` pixels, decoded at the model's size
  (draft mode) against decoded whole: peak resident memory of a fresh process doing only that,
  and over a process decoding a 64 x 64 JPEG (the imports' share).

Results are printed and written to ``bench/results/hostile_input.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def drip_server(drip_bytes: int) -> tuple[int, socket.socket]:
    """A server answering each connection with headers, then one body byte a second."""
    listener = socket.create_server(("127.0.0.1", 0))
    header = (
        f"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {drip_bytes}\r\n\r\n"
    ).encode()

    def answer(connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                connection.sendall(header)
                for _ in range(drip_bytes):
                    time.sleep(1.0)  # the drip being measured
                    connection.sendall(b"x")
            except OSError:
                return  # the client gave up

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], listener


def held_seconds_guarded(url: str, timeout: float) -> float:
    from monitor.exceptions import ImageFetchError
    from monitor.images import ImageFetcher, ImageLimits

    fetcher = ImageFetcher(limits=ImageLimits(allow_private_hosts=True, timeout_seconds=timeout))
    started = time.perf_counter()
    with contextlib.suppress(ImageFetchError):  # the deadline: what is measured is when
        fetcher.fetch(url)
    return time.perf_counter() - started


def held_seconds_per_read_timeout(url: str, timeout: float) -> float:
    import requests

    started = time.perf_counter()
    with requests.get(url, stream=True, timeout=(timeout, timeout)) as response:
        for _ in response.iter_content(64 * 1024):
            pass
    return time.perf_counter() - started


DECODE_CHILD = """
import io, resource, sys
from PIL import Image
from monitor.images import decode_scaled
data = sys.stdin.buffer.read()
max_side = None if sys.argv[1] == "full" else int(sys.argv[1])
decode_scaled(data, max_pixels=60_000_000, max_side=max_side)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mib(data: bytes, max_side: str) -> float:
    """Peak resident memory (MiB) of a fresh process decoding ``data``."""
    result = subprocess.run(
        [sys.executable, "-c", DECODE_CHILD, max_side],
        input=data,
        capture_output=True,
        check=True,
        cwd=ROOT,
    )
    return int(result.stdout.decode().strip()) / 1024


def huge_jpeg(side: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (210, 20, 20)).save(buffer, "JPEG", quality=30)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--drip-bytes", type=int, default=8)
    parser.add_argument("--side", type=int, default=7000)
    arguments = parser.parse_args()

    port, listener = drip_server(arguments.drip_bytes)
    url = f"http://127.0.0.1:{port}/drip.jpg"
    guarded = held_seconds_guarded(url, arguments.timeout)
    unbounded = held_seconds_per_read_timeout(url, arguments.timeout)
    listener.close()

    data = huge_jpeg(arguments.side)
    baseline_rss = peak_rss_mib(huge_jpeg(64), "full")
    full_rss = peak_rss_mib(data, "full")
    model_rss = peak_rss_mib(data, "1024")
    results = {
        "timeout_seconds": arguments.timeout,
        "drip_bytes": arguments.drip_bytes,
        "slow_drip_held_seconds": {"guarded": guarded, "per_read_timeout": unbounded},
        "slow_drip_ratio": unbounded / guarded,
        "jpeg_side": arguments.side,
        "jpeg_bytes": len(data),
        "decode_peak_rss_mib": {
            "process_baseline": baseline_rss,
            "whole": full_rss,
            "model_size": model_rss,
        },
        "decode_extra_mib": {
            "whole": full_rss - baseline_rss,
            "model_size": model_rss - baseline_rss,
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hostile_input.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
