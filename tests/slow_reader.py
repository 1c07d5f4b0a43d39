# Copies stdin to stdout slower than a disk gives it: the pipe before it
# stays full (tests/serialize.bats, tests/seal.bats, --reader-copies).
import sys
import time

n = 0
while True:
    d = sys.stdin.buffer.read(1 << 16)
    if not d:
        break
    sys.stdout.buffer.write(d)
    n += 1
    if n % 32 == 0:
        time.sleep(0.005)
