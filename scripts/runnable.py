#!/usr/bin/env python3
# Samples the R (running or runnable) threads of the given pids every 5 ms until they all exit or the
# file named by argv[1] appears; prints the distribution of how many were runnable at once.
import os, sys, time, collections
stop, pids = sys.argv[1], sys.argv[2:]
hist = collections.Counter()
while not os.path.exists(stop):
    n = 0
    alive = False
    for p in pids:
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        alive = True
        for t in tasks:
            try:
                s = open(f"/proc/{p}/task/{t}/stat").read()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if s[s.rindex(")") + 2] == "R":
                n += 1
    if not alive:
        break
    hist[n] += 1
    time.sleep(0.005)
total = sum(hist.values()) or 1
mean = sum(k * v for k, v in hist.items()) / total
print(f"runnable threads: mean {mean:.2f}; " + ", ".join(f"{k}: {100*v/total:.0f}%" for k, v in sorted(hist.items())), file=sys.stderr)
