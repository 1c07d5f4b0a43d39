# Copies the file argv[1] to stdout in pieces of odd sizes, with pauses,
# so that the pipe's reader sees frame headers and frames split anywhere
# (tests/failure.bats: stasis-inject's read-ahead).
import sys
import time

sizes = [1, 4093, 31, 65537, 7, 262147, 2, 1048573, 13, 4096 * 3 + 5]
with open(sys.argv[1], "rb") as f:
    out = sys.stdout.buffer
    i = 0
    while True:
        d = f.read(sizes[i % len(sizes)])
        if not d:
            break
        out.write(d)
        out.flush()
        i += 1
        if i % 97 == 0:
            time.sleep(0.002)
