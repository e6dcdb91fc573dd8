#!/bin/bash
# Make examples/base/rootfs.tar: a static busybox plus one RPM (built here from
# koji-example-hello.spec) installed with `rpm --root` into /var/lib/rpm, so the
# example base image needs no network and has a real, non-empty RPM list.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
busybox="${BUSYBOX:-/bin/busybox}"
out="${1:-$here/base/rootfs.tar}"   # usage: prepare.sh [OUTPUT_TAR]

if [ ! -x "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
    if [ -x "$busybox" ] && ! ldd "$busybox" >/dev/null 2>&1; then
        :   # `file` missing but ldd says it is not dynamic: fine
    else
        echo "prepare.sh: $busybox is not a static busybox (install the busybox-static package)" >&2
        exit 1
    fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rpmbuild -bb --quiet --define "_topdir $work/rpmbuild" --define '_build_id_links none' \
    "$here/base/koji-example-hello.spec" >"$work/rpmbuild.log" 2>&1 \
    || { cat "$work/rpmbuild.log" >&2; exit 1; }

root="$work/rootfs"
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/var/lib/rpm" "$root/root"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
# --dbpath: Debian's rpm keeps its own database elsewhere; images use /var/lib/rpm.
rpm --root "$root" --dbpath /var/lib/rpm --nodeps --noscripts --ignorearch \
    -i "$work"/rpmbuild/RPMS/noarch/koji-example-hello-*.rpm >"$work/rpm.log" 2>&1 \
    || { cat "$work/rpm.log" >&2; exit 1; }
tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 \
    -C "$root" -cf "$out.new" .
mv "$out.new" "$out"
echo "prepared $out"
