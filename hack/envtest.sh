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

# Several checkouts (worktrees, parallel test runs) may ask at once: one builds.
exec 9>"$cache/.lock"
if ! flock -n 9; then
  echo "envtest: another build holds $cache/.lock; waiting for it"
  flock 9
fi

build() { # name, module dir, package, expected `--version` text, extra -ldflags
  local name=$1 dir=$2 pkg=$3 want=$4 ldflags=${5:-}
  if [[ -x "$cache/$name" ]] && "$cache/$name" --version 2>/dev/null | grep -qF "$want"; then
    echo "envtest: $name cached in $cache"
    return
  fi
  echo "envtest: building $name from $pkg (first time only, a few minutes on 2 cores)..."
  local start=$SECONDS
  ( cd "$dir" && go build -trimpath -ldflags "-s -w $ldflags" -o "$cache/$name.tmp" "$pkg" ) &
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

# Stamp the version the way Kubernetes' own build does, so that clients and
# `kube-apiserver --version` report the real release instead of v0.0.0.
minor=${kube_version#v1.}; minor=${minor%%.*}
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
build kube-apiserver "$root/hack/envtest/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver "Kubernetes $kube_version" "$stamp"
build etcd "$root/hack/envtest/etcd" go.etcd.io/etcd/server/v3 "etcd Version: ${etcd_version#v}"

for f in kube-apiserver etcd; do ln -sf "$cache/$f" "$dest/$f"; done
echo "envtest: kube-apiserver $kube_version and etcd $etcd_version ready in $dest"
