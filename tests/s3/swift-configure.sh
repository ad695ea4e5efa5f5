#!/bin/bash
# Configures a one-node OpenStack Swift with its S3 API (Debian's swift packages: s3api and
# tempauth middleware) under DIR, for the bucket tests: the proxy on 127.0.0.1:PROXY_PORT, the
# account, container and object servers on the other three ports, one replica, everything
# (configs, rings, objects) inside DIR and nothing in /etc. Swift checks Signature V4 and rejects a
# wrong secret (403 SignatureDoesNotMatch), and lists and aborts multipart uploads.
#
#   swift-configure.sh DIR PROXY_PORT ACCOUNT_PORT CONTAINER_PORT OBJECT_PORT [tls]
#
# With "tls" the proxy speaks HTTPS with a self-signed certificate for 127.0.0.1 made here,
# DIR/tls/cert.pem (the CA bundle a client trusts, AWS_CA_BUNDLE).
#
# Run once per DIR; the servers are then started by the caller (tests/support/s3_process.cpp):
#   swift-{account,container,object}-server DIR/conf/{account,container,object}-server.conf
#   swift-proxy-server DIR/conf/proxy-server.conf
# The S3 account: access key "test:tester", secret "testing", region us-east-1, path style.
set -euo pipefail
D=$1 PROXY=$2 ACCOUNT=$3 CONTAINER=$4 OBJECT=$5 TLS=${6:-}
C=$D/conf
mkdir -p "$C" "$D/srv/d1"
TLS_LINES=""
if [[ "$TLS" == tls ]]; then
  mkdir -p "$D/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$D/tls/key.pem" -out "$D/tls/cert.pem" 2>/dev/null
  TLS_LINES="cert_file = $D/tls/cert.pem
key_file = $D/tls/key.pem"
fi
cat > "$C/swift.conf" <<E
[swift-hash]
swift_hash_path_suffix = quickthumb-tests
swift_hash_path_prefix = quickthumb-tests
[storage-policy:0]
name = Policy-0
default = yes
E
# The rings: one device, one replica, one partition (Debian's python3-swift, not the pyenv shim).
/usr/bin/python3 - "$C" "$ACCOUNT" "$CONTAINER" "$OBJECT" <<'E'
import sys
from swift.common.ring import RingBuilder
conf, ports = sys.argv[1], dict(zip(('account', 'container', 'object'), map(int, sys.argv[2:5])))
for name, port in ports.items():
    b = RingBuilder(0, 1, 1)
    b.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port, 'device': 'd1', 'weight': 1})
    b.rebalance()
    b.get_ring().save('%s/%s.ring.gz' % (conf, name))
E
for r in account:$ACCOUNT container:$CONTAINER object:$OBJECT; do
  n=${r%%:*} p=${r##*:}
  cat > "$C/$n-server.conf" <<E
[DEFAULT]
devices = $D/srv
mount_check = false
bind_ip = 127.0.0.1
bind_port = $p
workers = 0
swift_dir = $C
log_level = WARNING
log_address = /nonexistent
[pipeline:main]
pipeline = $n-server
[app:$n-server]
use = egg:swift#$n
E
done
cat > "$C/proxy-server.conf" <<E
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY
$TLS_LINES
workers = 0
swift_dir = $C
log_level = WARNING
log_address = /nonexistent
[pipeline:main]
pipeline = catch_errors gatekeeper proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
# A backend that refused connections while it was still starting must not be shunned for a minute
# (the default: ten errors, then 60 s of 503 "reduce your request rate"), which a loaded machine
# hit when the test made its bucket.
error_suppression_limit = 1000000
error_suppression_interval = 1
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
min_segment_size = 5242880
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:11211
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
E
