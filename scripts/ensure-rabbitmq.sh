#!/usr/bin/env bash
# Make sure RabbitMQ answers on 127.0.0.1:5672 (user guest) for the messaging tests, with
# rabbitmqctl at hand (each test creates and deletes its own vhost with it): nothing to do if
# something already listens there; otherwise (root, Debian) install Debian's rabbitmq-server and
# start it. Never touches a running broker.
set -euo pipefail

listening() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

if listening; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "ensure-rabbitmq: no broker on 127.0.0.1:5672 and cannot install one (need root + apt);" \
        "RabbitMQ tests will be skipped (or fail when CI is set)" >&2
    exit 0
fi
if ! [ -x /usr/sbin/rabbitmq-server ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rabbitmq-server
fi
# A container has no systemd: start the node in the background (`-detached`), as the service would.
if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    systemctl start rabbitmq-server
else
    /usr/sbin/rabbitmq-server -detached
fi
for _ in $(seq 1 60); do
    listening && /usr/sbin/rabbitmqctl -q await_startup >/dev/null 2>&1 && exit 0
    sleep 1
done
echo "ensure-rabbitmq: RabbitMQ did not come up" >&2
exit 1
