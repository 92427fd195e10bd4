#!/bin/sh
# Builds a Python 3.11 base image from Debian bookworm packages with debootstrap, for a
# machine that reaches Debian's package mirror but no container registry. The result stands in
# for python:3.11-slim-bookworm:
#
#   sudo deploy/base_image.sh privategptpp-base:bookworm
#   docker build --network host --build-arg PYTHON_IMAGE=privategptpp-base:bookworm --target cpu .
#
# Needs root, debootstrap and a running Docker daemon. Behind a TLS-intercepting proxy, give
# the host's CA bundle (CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt): it replaces the image's
# bundle and pip is pointed at it, or every download in the build fails certificate checks.
set -eu

TAG="${1:-privategptpp-base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ROOTFS="$(mktemp -d /tmp/privategptpp-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT

# python3 is 3.11 on bookworm; python-is-python3 gives `python`, python3-venv gives ensurepip.
debootstrap --variant=minbase \
    --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "$ROOTFS" "$MIRROR"
if [ -n "${CA_BUNDLE:-}" ]; then
    cp "$CA_BUNDLE" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
fi
# No package lists or apt caches in the image.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb
# An imported image has no environment: the Dockerfile's `ENV PATH=/opt/venv/bin:$PATH` needs one.
tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' \
    - "$TAG"
echo "built $TAG"
