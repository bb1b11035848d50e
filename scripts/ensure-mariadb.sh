#!/usr/bin/env bash
# Starts the local MariaDB (127.0.0.1:3306, root, empty password, database `test`) when it does not answer.
# Tests that need it fail (not skip) under CI=true when it stays unreachable.
set -uo pipefail
answers() { mariadb -uroot -h127.0.0.1 -P3306 -e "select 1" >/dev/null 2>&1 || mysql -uroot -h127.0.0.1 -P3306 -e "select 1" >/dev/null 2>&1; }
if answers; then exit 0; fi
echo "MariaDB is not answering on 127.0.0.1:3306; starting it" >&2
if [ -x /usr/sbin/mariadbd ]; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql 2>/dev/null \
    || start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
for _ in $(seq 1 60); do
  if answers; then
    mariadb -uroot -h127.0.0.1 -e "CREATE DATABASE IF NOT EXISTS test" >/dev/null 2>&1 || true
    exit 0
  fi
  sleep 1
done
echo "MariaDB did not come up on 127.0.0.1:3306" >&2
exit 0
