#!/usr/bin/env bash
# Starts the local NATS server with JetStream (127.0.0.1:4222) when it does not answer; the JetStream example's
# test fails (not skips) under CI=true when it stays unreachable.
set -uo pipefail
answers() { (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; }
if answers; then exit 0; fi
echo "NATS is not answering on 127.0.0.1:4222; starting it" >&2
if [ -x /usr/sbin/nats-server ]; then
  mkdir -p /var/lib/nats-server 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
fi
for _ in $(seq 1 30); do
  if answers; then exit 0; fi
  sleep 1
done
echo "NATS did not come up on 127.0.0.1:4222" >&2
exit 0
