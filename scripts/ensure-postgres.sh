#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 (user postgres, trust auth) for the
# tests: nothing to do if one already does; otherwise (root, Debian) install Debian's
# PostgreSQL, allow trust auth from loopback and start the cluster. Never touches a running one.
set -euo pipefail

# Something listening on 5432 (no client tools needed): leave it alone, the tests will tell.
listening() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
ready() { pg_isready -q -h 127.0.0.1 -p 5432 -U postgres 2>/dev/null; }

if listening; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "ensure-postgres: no server on 127.0.0.1:5432 and cannot install one (need root + apt);" \
        "PostgreSQL tests will be skipped (or fail when CI is set)" >&2
    exit 0
fi
if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql
fi
version=$(ls /etc/postgresql | sort -n | tail -1)
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    # Loopback-only trust for the test server; prepended so it wins over the default rules.
    sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
fi
pg_ctlcluster "$version" main start || pg_ctlcluster "$version" main reload
for _ in $(seq 1 30); do
    ready && exit 0
    sleep 1
done
echo "ensure-postgres: PostgreSQL did not come up" >&2
exit 1
