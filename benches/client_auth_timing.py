#!/usr/bin/env python3
"""Times rejected client authentications on a live jobtoken server (issue 7 point 11).

Sends `POST /oauth/token` requests one at a time over one keep-alive connection, alternating
(in a random order within each pair) between an unknown client_id and a known client_id with a
wrong secret, and prints the median round trip of each and their difference in microseconds.

Usage: client_auth_timing.py BASE_URL KNOWN_CLIENT_ID JOB_ID [PAIRS] [MAX_SECONDS]
"""

import base64
import http.client
import random
import statistics
import sys
import time
import urllib.parse


def main() -> int:
    base, known_id, job_id = sys.argv[1], sys.argv[2], sys.argv[3]
    pairs = int(sys.argv[4]) if len(sys.argv) > 4 else 4000
    max_seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)

    # Same lengths as the real credentials, so parsing and hashing cost the same.
    unknown_id = "runner_" + "x" * (len(known_id) - len("runner_"))
    wrong_secret = "jtrs_" + "A" * 43
    body = f"grant_type=client_credentials&job_id={job_id}".encode()

    def headers(client_id: str) -> dict:
        basic = base64.b64encode(f"{client_id}:{wrong_secret}".encode()).decode()
        return {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}

    cases = {"unknown": headers(unknown_id), "wrong_secret": headers(known_id)}

    def once(name: str) -> int:
        start = time.perf_counter_ns()
        conn.request("POST", "/oauth/token", body=body, headers=cases[name])
        res = conn.getresponse()
        res.read()
        elapsed = time.perf_counter_ns() - start
        if res.status != 401:
            raise SystemExit(f"{name}: expected 401, got {res.status}")
        return elapsed

    for _ in range(200):  # warm-up: connection, statement caches, branch predictors
        once("unknown")
        once("wrong_secret")

    samples = {"unknown": [], "wrong_secret": []}
    deadline = time.monotonic() + max_seconds
    for _ in range(pairs):
        if time.monotonic() > deadline:
            break
        order = ["unknown", "wrong_secret"]
        random.shuffle(order)
        for name in order:
            samples[name].append(once(name))
    conn.close()

    n = len(samples["unknown"])
    med = {k: statistics.median(v) / 1000 for k, v in samples.items()}
    # Median of per-pair differences: robust against slow phases that hit both requests of a pair.
    paired = statistics.median(b - a for a, b in zip(samples["unknown"], samples["wrong_secret"])) / 1000
    print(f"pairs measured:              {n}")
    print(f"median unknown client_id:    {med['unknown']:.1f} us")
    print(f"median known id, bad secret: {med['wrong_secret']:.1f} us")
    print(f"difference (known - unknown): {med['wrong_secret'] - med['unknown']:+.1f} us")
    print(f"median paired difference:     {paired:+.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
