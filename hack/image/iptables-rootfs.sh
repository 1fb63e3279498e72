#!/usr/bin/env bash
# Usage: iptables-rootfs.sh DIR
#
# Collects this machine's nf_tables iptables (xtables-nft-multi, the shared
# libraries and dynamic loader it needs, its dlopen'ed extensions) into DIR as
# a root file system tree, for `make image` to add to the syncer's image: the
# syncer runs iptables-restore, which an empty base lacks, and no registry is
# needed this way. Files keep their host paths, so the host's ld.so.cache
# (copied too) stays valid.
#
# Only the nf_tables backend is included, the default of every current
# distribution. Nodes still on legacy iptables need kube-proxy's base, which
# picks the backend at run time: make image SYNCER_BASE=registry.k8s.io/build-image/distroless-iptables:v0.9.9
set -euo pipefail

out=${1:?usage: iptables-rootfs.sh DIR}
multi=
for candidate in /usr/sbin/xtables-nft-multi /sbin/xtables-nft-multi; do
  [[ -x $candidate ]] && { multi=$candidate; break; }
done
[[ -n $multi ]] || { echo "iptables-rootfs: xtables-nft-multi not found; install the iptables package (apt-get install iptables)" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"

copy() { # copy a host file, symlinks resolved, to the same path under $out
  mkdir -p "$out$(dirname "$1")"
  cp -L --preserve=mode "$1" "$out$1"
}

# libs FILE: the absolute paths of the shared objects FILE loads, loader included.
libs() {
  ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
}

copy "$multi"
declare -A seen=()
deps=$(libs "$multi")
xtables=
for lib in $deps; do
  # Where libxtables was built to look (its real path, not a /lib alias).
  [[ $lib == */libxtables.so* ]] && xtables=$(readlink -f "$(dirname "$lib")/xtables")
done
# Extensions (libxt_*.so and friends) are dlopen'ed, so ldd does not list them.
for dir in "$xtables" /usr/lib/x86_64-linux-gnu/xtables /usr/lib/aarch64-linux-gnu/xtables /usr/lib64/xtables /usr/lib/xtables; do
  [[ -n $dir && -d $dir ]] || continue
  for ext in "$dir"/*.so; do
    copy "$ext"
    deps+=$'\n'$(libs "$ext")
  done
  break
done
for lib in $deps; do
  [[ -n ${seen[$lib]:-} ]] && continue
  seen[$lib]=1
  copy "$lib"
done
[[ -f /etc/ld.so.cache ]] && copy /etc/ld.so.cache
# Protocol names for -p (iptables knows the common ones; the rest come from here).
[[ -f /etc/protocols ]] && copy /etc/protocols

sbin=$(dirname "$multi")
for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore \
  iptables-nft iptables-nft-save iptables-nft-restore ip6tables-nft ip6tables-nft-save ip6tables-nft-restore; do
  ln -sf xtables-nft-multi "$out$sbin/$name"
done
echo "iptables-rootfs: $("$multi" iptables --version) with $(find "$out" -type f | wc -l) files in $out"
