#!/usr/bin/env bash
# mmdebstrap customize hook for the stand-in of gcr.io/distroless/nodejs20-debian12:nonroot, run by
# scripts/image.sh `bases` on the host with the root tree as $1 and this machine's Node.js 20 binary
# as $2. Distroless itself is made the same way: Debian packages unpacked without running their
# maintainer scripts (mmdebstrap --variant=extract), then the few files those scripts would have
# written are written here, and everything that could run a command is removed: no shell, no
# package manager, no coreutils.
set -euo pipefail
root=${1:?usage: distroless.sh ROOT NODE}
node=${2:?usage: distroless.sh ROOT NODE}
# Never the host's own tree: a fresh mmdebstrap directory only.
[[ -d $root && $(realpath "$root") != / && -f $root/lib64/ld-linux-x86-64.so.2 ]] || { echo "distroless.sh: $root is not an unpacked Debian tree" >&2; exit 1; }

# What the extracted dependencies (debconf, openssl, perl-base, mawk, dpkg ...) bring that
# distroless does not have: every executable but the dynamic loader, and their data.
rm -rf "${root:?}"/bin "${root:?}"/sbin "${root:?}"/usr/bin "${root:?}"/usr/sbin "${root:?}"/usr/libexec \
  "${root:?}"/usr/games "${root:?}"/usr/local/bin "${root:?}"/usr/local/sbin \
  "${root:?}"/usr/share/perl5 "${root:?}"/usr/lib/x86_64-linux-gnu/perl* "${root:?}"/usr/share/debconf \
  "${root:?}"/usr/share/man "${root:?}"/usr/share/info "${root:?}"/usr/share/lintian "${root:?}"/usr/share/bash-completion \
  "${root:?}"/usr/share/pixmaps "${root:?}"/usr/share/gdb "${root:?}"/usr/share/gcc \
  "${root:?}"/etc/apt "${root:?}"/var/lib/apt "${root:?}"/var/cache/apt "${root:?}"/var/cache/debconf "${root:?}"/var/lib/dpkg \
  "${root:?}"/etc/dpkg "${root:?}"/usr/lib/dpkg "${root:?}"/usr/share/dpkg
mkdir -p "$root"/bin "$root"/usr/bin "$root"/usr/local/bin
# Distroless keeps each package's copyright file, not its other docs.
find "$root"/usr/share/doc -type f ! -name copyright -delete

# ca-certificates' postinst (update-ca-certificates) would write the bundle: Debian's Mozilla set.
mkdir -p "$root"/etc/ssl/certs
cat "$root"/usr/share/ca-certificates/mozilla/*.crt >"$root"/etc/ssl/certs/ca-certificates.crt

# Distroless's users and groups: root, nobody and nonroot (65532), no login shell.
cat >"$root"/etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat >"$root"/etc/group <<'GROUP'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
GROUP
install -d -m 0700 "$root"/root
install -d -m 0700 -o 65532 -g 65532 "$root"/home/nonroot
install -d -m 1777 "$root"/tmp

# Node.js where distroless puts it.
install -D -m 0755 "$node" "$root"/nodejs/bin/node

# The promise of the image: nothing here can start a shell.
if find "$root" \( -name sh -o -name bash -o -name dash -o -name busybox \) -print -quit | grep -q .; then
  echo "distroless.sh: a shell is left in the tree" >&2
  exit 1
fi
