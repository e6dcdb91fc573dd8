#!/bin/bash
# Set up a fresh Debian machine (run as root, or with sudo available) for
# koji-containerbuild: Debian packages, then a virtualenv in .venv with the
# package and its test tools installed.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# buildah, docker-registry (docker-distribution), git, rpm (+rpmbuild), python3-rpm for
# the native backend and tests; libkrb5-dev + gcc so pip can build koji's gssapi dependency;
# busybox-static for the bundled examples; apache2-utils (htpasswd) for the registry-auth tests;
# runc: the OCI runtime the production-default tests (isolation = oci, network = private)
# use, since Debian's default crun cannot start containers on hosts with hybrid cgroups.
# createrepo-c: the yum repository the hermetic-build tests bind-mount into RUN steps.
PKGS="buildah docker-registry git rpm python3-rpm python3-venv python3-dev libkrb5-dev gcc
      fuse-overlayfs uidmap busybox-static apache2-utils runc createrepo-c"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi

# Debian's python3 carries the rpm bindings (python3-rpm): build the venv on it and
# let it see system site-packages for `import rpm`.
if [ ! -x .venv/bin/python ]; then
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q '.[test]'
echo "setup done: $(.venv/bin/python -c 'import koji_containerbuild as k; print("koji-containerbuild", k.__version__)')"
