# A fork child in Python on the descriptor protocol: newline-delimited JSON on
# the descriptor named by NODE_CHANNEL_FD. The first argument picks a mode:
# none (a worker answering each message), "noread" (never reads the channel),
# "oversize" (sends one line over the message size limit, then a normal one),
# "late" (reads nothing for a second, then for every 500 messages sends
# {"count": messages so far, "sum": sum of their "n"}).
import json
import os
import sys
import time

fd = int(os.environ['NODE_CHANNEL_FD'])

mode = sys.argv[1] if len(sys.argv) > 1 else ''
if mode == 'noread':
    time.sleep(120)
    sys.exit(0)

inp = open(fd, 'rb', closefd=False)


def send(x):
    data = (json.dumps(x) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


if mode == 'oversize':
    # one line over the 1 MiB message limit (a valid JSON number), then a
    # normal message: only the normal one may arrive
    data = b'1' * 1500000 + b'\n'
    while data:
        data = data[os.write(fd, data):]
    send({"after": 1})
    time.sleep(120)
    sys.exit(0)

if mode == 'late':
    time.sleep(1)
    count = total = 0
    for line in inp:
        count += 1
        total += json.loads(line)["n"]
        if count % 500 == 0:
            send({"count": count, "sum": total})
    sys.exit(0)

send({"ready": "python", "serialization": os.environ.get("NODE_CHANNEL_SERIALIZATION_MODE")})
for line in inp:
    x = json.loads(line)
    send({"got": x, "doubled": x["n"] * 2 if isinstance(x, dict) and "n" in x else None})
print("worker: channel closed", flush=True)
sys.exit(0)
