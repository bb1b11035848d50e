#!/usr/bin/env bash
# Starts the local PostgreSQL (127.0.0.1:5432) when it does not answer: the Checkpointer's PostgreSQL tests
# (packages/sink/test/stores.test.ts, Fencing.test.ts) fail (not skip) under CI=true when it stays unreachable.
set -uo pipefail
answers() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if answers; then exit 0; fi
echo "PostgreSQL is not answering on 127.0.0.1:5432; starting it" >&2
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
for _ in $(seq 1 30); do
  if answers; then exit 0; fi
  sleep 1
done
echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2
exit 0
