#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver and etcd) from the Go module
# proxy, because no download site for prebuilt binaries is reachable. The build
# takes minutes once; the result is cached outside the checkout so fresh clones
# (CI) reuse it, and linked into bin/k8s/.
#
# The kube-apiserver version follows k8s.io/api in go.mod: v0.X.Y -> v1.X.Y.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
api_version=$(awk '$1 == "k8s.io/api" { print $2; exit }' "$root/go.mod")
[[ -n "$api_version" ]] || { echo "envtest: k8s.io/api not found in go.mod" >&2; exit 1; }
kube_version="v1.${api_version#v0.}"
etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "$root/hack/envtest/etcd/go.mod")
cache="${OUTPOST_CACHE:-$HOME/.cache/outpost}/k8s/${kube_version}-etcd-${etcd_version}"
dest="$root/bin/k8s"

mkdir -p "$cache" "$dest"

build() { # name, module dir, package
  local name=$1 dir=$2 pkg=$3
  if [[ -x "$cache/$name" ]]; then
    echo "envtest: $name cached in $cache"
    return
  fi
  echo "envtest: building $name from $pkg (first time only, a few minutes on 2 cores)..."
  local start=$SECONDS
  ( cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$cache/$name.tmp" "$pkg" ) &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 15
    kill -0 "$pid" 2>/dev/null && echo "envtest: ... still building $name ($((SECONDS - start))s)"
  done
  wait "$pid"
  mv "$cache/$name.tmp" "$cache/$name"
  echo "envtest: built $name in $((SECONDS - start))s"
}

# The helper module pins k8s.io/kubernetes; check it agrees with go.mod.
pinned=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$root/hack/envtest/kube-apiserver/go.mod")
if [[ "$pinned" != "$kube_version" ]]; then
  echo "envtest: hack/envtest/kube-apiserver pins k8s.io/kubernetes $pinned but go.mod has k8s.io/api $api_version (want $kube_version)" >&2
  exit 1
fi

build kube-apiserver "$root/hack/envtest/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
build etcd "$root/hack/envtest/etcd" go.etcd.io/etcd/server/v3

for f in kube-apiserver etcd; do ln -sf "$cache/$f" "$dest/$f"; done
echo "envtest: kube-apiserver $kube_version and etcd $etcd_version ready in $dest"
