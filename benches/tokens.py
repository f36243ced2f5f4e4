#!/usr/bin/env python3
"""Mints one token per fleet job for benches/run.sh and writes the request bodies of the
introspection and decision runs (one per line), so that those runs cycle through 10,000 distinct
tokens and 1,000 distinct targets instead of one cached token.

  tokens.py BASE RUNNER_AUTH FIRST_JOB LAST_JOB OUT_DIR

Job j (user j-1, project (j-1)//10 in top group a) gets a decision on a project of top group a+1,
whose groups_allowlist entry on the top group admits top group a (seed.py): the decision walks
both hierarchies. Prints the number of tokens minted; fails on any non-200.
"""
import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from seed import PROJECTS_PER_SUB, SUBS_PER_TOP, TOPS, USERS, fleet_project  # noqa: E402

THREADS = 8


def main():
    base, auth, first, last, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    url = urlsplit(base)
    jobs = list(range(first, last + 1))
    tokens = [None] * len(jobs)
    errors = []
    per_top = SUBS_PER_TOP * PROJECTS_PER_SUB

    def worker(k):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
        for n in range(k, len(jobs), THREADS):
            if errors:
                return
            conn.request("POST", "/oauth/token", f"grant_type=client_credentials&job_id={jobs[n]}", headers)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                errors.append(f"job {jobs[n]}: {resp.status} {body[:200]!r}")
                return
            tokens[n] = json.loads(body)["access_token"]

    start = time.time()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("tokens.py: " + errors[0])
    with open(f"{out}/introspect.bodies", "w") as f:
        for token in tokens:
            f.write(f"token={token}\n")
    with open(f"{out}/decide.bodies", "w") as f:
        for n, token in enumerate(tokens):
            user = jobs[n] - 1
            top = (user * TOPS // USERS + 1) % TOPS
            target = fleet_project(top * per_top + user % per_top)
            f.write(json.dumps({"token": token, "project": target, "scope": "read_repository"},
                               separators=(",", ":")) + "\n")
    print(len(tokens))
    print(f"tokens.py: {len(tokens)} tokens in {time.time() - start:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
