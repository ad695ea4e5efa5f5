#!/usr/bin/env python3
"""`podman-compose config` for Debian's podman-compose 1.0.3, which has no such command: loads
compose.yaml with podman-compose's own parser (anchors, merge keys, variables, dependencies
resolved, the same code `podman-compose up` runs first) without starting anything, and prints the
services as podman-compose would run them, as JSON. Exits non-zero when podman-compose refuses
the file.  Usage: config.py COMPOSE_FILE"""
import json
import os
import sys

sys.path.insert(0, "/usr/lib/python3/dist-packages")
import podman_compose as pc  # noqa: E402

path = os.path.realpath(sys.argv[1])
compose = pc.podman_compose  # the instance its commands are registered on
sys.argv = ["podman-compose", "-f", path, "ps"]
compose.global_args = compose._parse_args()
compose._parse_compose_file()  # raises or exits on a bad file
out = {}
for name, c in compose.container_by_name.items():
    out[c["_service"]] = {k: v for k, v in c.items() if not k.startswith("_") and k != "labels"}
json.dump({"services": out, "volumes": sorted((compose.vols or {}).keys())}, sys.stdout, indent=2, default=str)
print()
