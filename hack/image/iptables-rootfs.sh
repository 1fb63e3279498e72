#!/usr/bin/env bash
# Usage: iptables-rootfs.sh ARCH DIR
#
# Writes Debian's iptables for ARCH (a GOARCH: amd64, arm64, ...) into DIR as a
# root file system tree, for `make image` to add to the syncer's image: both
# backends (xtables-nft-multi and xtables-legacy-multi, with the
# iptables-nft*, iptables-legacy*, ip6tables-* names), their shared libraries,
# dynamic loader and extensions. The syncer detects which backend the node
# uses and runs that one's tools, the way kube-proxy's image does; the plain
# iptables* names point at nf_tables, for people using `kubectl exec`.
#
# The packages come from this machine's apt sources through a private apt
# configuration (its own lists, download cache and an empty dpkg status under
# ${OUTPOST_CACHE:-~/.cache/outpost}/apt/ARCH): apt resolves iptables'
# dependencies as if installing into an empty ARCH system, without touching
# the host's apt state and without the host being ARCH, and dpkg-deb unpacks
# them. Downloads are cached; the package lists are refreshed once a day, so
# rebuilds in between pick the same packages.
set -euo pipefail

arch=${1:?usage: iptables-rootfs.sh ARCH DIR}
out=${2:?usage: iptables-rootfs.sh ARCH DIR}

# GOARCH to Debian architecture.
case $arch in
  amd64 | arm64 | s390x | riscv64) deb_arch=$arch ;;
  arm) deb_arch=armhf ;;
  386) deb_arch=i386 ;;
  ppc64le) deb_arch=ppc64el ;;
  *) echo "iptables-rootfs: no Debian architecture for GOARCH $arch" >&2; exit 1 ;;
esac
for tool in apt-get dpkg-deb flock; do
  command -v $tool >/dev/null || { echo "iptables-rootfs: $tool not found; this needs Debian's apt and dpkg (apt-get install apt dpkg util-linux)" >&2; exit 1; }
done

state="${OUTPOST_CACHE:-$HOME/.cache/outpost}/apt/$deb_arch"
mkdir -p "$state/lists/partial" "$state/archives/partial"
touch "$state/status"
# Several checkouts may build at once: one apt at a time per architecture.
exec 9>"$state/.lock"
if ! flock -n 9; then
  echo "iptables-rootfs: another build holds $state/.lock; waiting for it"
  flock 9
fi

apt=(apt-get -q -o "APT::Sandbox::User=$(id -un)"
  -o "APT::Architecture=$deb_arch" -o "APT::Architectures=$deb_arch"
  -o "Dir::State=$state" -o "Dir::State::lists=$state/lists" -o "Dir::State::status=$state/status"
  -o "Dir::Cache=$state" -o "Dir::Cache::archives=$state/archives"
  -o "APT::Install-Recommends=false" -o "APT::Get::Assume-Yes=true")

if [[ -z $(find "$state/lists" -maxdepth 1 -name '*Packages*' -mmin -1440) ]]; then
  echo "iptables-rootfs: updating the $deb_arch package lists in $state"
  "${apt[@]}" -qq update
fi
# fetch sets plan to the packages an install of iptables into an empty system
# takes, as "NAME VERSION ARCH" lines (exactly these are unpacked: the cache
# may hold others), and downloads them.
fetch() {
  plan=$("${apt[@]}" -qq --simulate install iptables |
    sed -n 's/^Inst \([^: ]*\)[^ ]* (\([^ ]*\) .*\[\([^]]*\)\]).*/\1 \2 \3/p')
  [[ $plan == *"iptables "* ]] || { echo "iptables-rootfs: apt plans no iptables for $deb_arch:"$'\n'"$plan" >&2; return 1; }
  "${apt[@]}" -qq --download-only install iptables
}
if ! fetch; then
  echo "iptables-rootfs: retrying with fresh package lists (the mirror may have dropped a cached version)"
  "${apt[@]}" -qq update
  fetch
fi

rm -rf "$out"
mkdir -p "$out"
while read -r name version pkg_arch; do
  deb="$state/archives/${name}_${version//:/%3a}_${pkg_arch}.deb"
  dpkg-deb -x "$deb" "$out"
done <<<"$plan"

# What a container never reads: documentation, and libc's character set
# converters (iptables does no iconv).
rm -rf "$out/usr/share/doc" "$out/usr/share/man" "$out/usr/share/lintian" "$out/usr/share/info" \
  "$out"/usr/lib/*-linux-gnu*/gconv
# The plain names are update-alternatives links on Debian, made by a script
# that does not run here.
for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -sf xtables-nft-multi "$out/usr/sbin/$name"
done
# iptables-legacy takes /run/xtables.lock (the DaemonSet mounts the node's
# there); without /run it cannot even create one.
mkdir -p "$out/run"
echo "iptables-rootfs: $deb_arch iptables $(awk '$1 == "iptables" { print $2 }' <<<"$plan") (nft and legacy)," \
  "$(wc -l <<<"$plan") packages, $(find "$out" -type f | wc -l) files in $out"
