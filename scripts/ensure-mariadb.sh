#!/usr/bin/env bash
# Make sure a MariaDB (or MySQL) server answers on 127.0.0.1:3306 for the tests, with
# root@127.0.0.1 allowed in without a password: nothing to do if one already listens; otherwise
# (root, Debian) install Debian's MariaDB, start it and create that loopback-only login.
# Never touches a running server.
set -euo pipefail

# Something listening on 3306 (no client tools needed): leave it alone, the tests will tell.
listening() { (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null; }
ready() { mariadb-admin --protocol=tcp -h 127.0.0.1 -u root ping >/dev/null 2>&1; }

if listening; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "ensure-mariadb: no server on 127.0.0.1:3306 and cannot install one (need root + apt);" \
        "MariaDB tests will be skipped (or fail when CI is set)" >&2
    exit 0
fi
if ! command -v mariadbd >/dev/null; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mariadb-server
fi
# Debian's server listens on 127.0.0.1 only (bind-address in 50-server.cnf). No systemd in a
# container: the init script (or mysqld_safe) starts it.
service mariadb start 2>/dev/null || (mysqld_safe >/dev/null 2>&1 &)
for _ in $(seq 1 30); do
    (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null && break
    sleep 1
done
# Debian's root@localhost logs in by unix_socket only; the tests connect over TCP, as root from
# 127.0.0.1 without a password: a loopback-only account for this test server.
mariadb -u root <<'SQL'
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
SQL
for _ in $(seq 1 30); do
    ready && exit 0
    sleep 1
done
echo "ensure-mariadb: MariaDB did not come up" >&2
exit 1
