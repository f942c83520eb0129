# kube-lab-install.sh - `kube-lab.sh install` (sourced by test/k8s/kube-lab.sh, which sets CACHE, LOG,
# BIN, MIRROR, SUITE, APT_OPTS, PKGS, REFLECT2_SRC): the Kubernetes 1.20 source through a private apt
# configuration, the vendor fix, the lab kubelet patch, and the build of the binaries.
# shellcheck shell=bash

# ---------------------------------------------------------------- install
private_apt() { # private_apt ARGS... : apt-get with a private source list (deb-src) and lists dir
  local dir=$CACHE/apt
  mkdir -p "$dir/lists/partial" "$dir/archives/partial"
  cat >"$dir/sources.list" <<EOF
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE main
EOF
  apt-get -o Dir::Etc::sourcelist="$dir/sources.list" -o Dir::Etc::sourceparts=- \
    -o Dir::State::Lists="$dir/lists" -o Dir::Cache::Archives="$dir/archives" \
    -o APT::Get::List-Cleanup=0 "$@"
}

fetch_source() { # -> prints the unpacked source directory
  local src=$CACHE/src
  if [[ -n $(compgen -G "$src/kubernetes-*/Makefile") ]]; then
    compgen -G "$src/kubernetes-*/Makefile" | head -1 | xargs dirname
    return
  fi
  rm -rf "$src.tmp"; mkdir -p "$src.tmp"
  progress_run "apt-get update (private deb-src list in $CACHE/apt)" "$LOG/apt.log" private_apt -q update >&2 ||
    die "apt-get update failed (log: $LOG/apt.log)"
  progress_run "apt-get source kubernetes (35 MB)" "$LOG/apt.log" \
    bash -c 'cd "$1" && shift && "$@"' _ "$src.tmp" apt-get \
    -o Dir::Etc::sourcelist="$CACHE/apt/sources.list" -o Dir::Etc::sourceparts=- \
    -o Dir::State::Lists="$CACHE/apt/lists" -o Dir::Cache::Archives="$CACHE/apt/archives" \
    -o APT::Get::List-Cleanup=0 -q source kubernetes >&2 || die "apt-get source failed (log: $LOG/apt.log)"
  rm -rf "$src"; mv "$src.tmp" "$src"
  compgen -G "$src/kubernetes-*/Makefile" | head -1 | xargs dirname
}

fix_vendor() { # fix_vendor SRC : reflect2 1.0.1 -> 1.0.2 (1.0.1 crashes with Go >= 1.18), modules.txt
  local dir=$1 v=$1/vendor/github.com/modern-go/reflect2
  [[ -d $REFLECT2_SRC ]] || die "$REFLECT2_SRC missing (golang-github-modern-go-reflect2-dev)"
  if [[ ! -f $dir/.kube-lab-vendor-fixed ]]; then
    log "vendor: replacing modern-go/reflect2 with v1.0.2 from $REFLECT2_SRC"
    rm -rf "$v"; mkdir -p "$v"
    # only the package's non-test Go sources and license (what `go mod vendor` would keep)
    find "$REFLECT2_SRC" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' -o -name LICENSE \) ! -name '*_test.go' \
      -exec cp -L {} "$v/" \;
    # modules.txt: record v1.0.2 for the vendored module and the requirement in go.mod files,
    # otherwise `go build -mod=vendor` refuses the inconsistent vendor directory
    sed -i -E 's|(github.com/modern-go/reflect2) v1\.0\.1|\1 v1.0.2|g' "$dir/vendor/modules.txt"
    find "$dir" -name go.mod -not -path '*/vendor/*' -print0 |
      xargs -0 sed -i -E 's|(github.com/modern-go/reflect2) v1\.0\.1|\1 v1.0.2|'
    touch "$dir/.kube-lab-vendor-fixed"
  fi
}

patch_kubelet() { # patch_kubelet SRC : the lab's kubelet 1.20 gets Kubernetes 1.26's fix (PR #112597):
  # it sends `:authority: localhost` to CSI and plugin-registration sockets instead of the socket
  # path, which HTTP/2 servers other than grpc-go (Node's among them) reject. Lab only: the driver
  # documents kubelet 1.26 as its minimum (docs/kubernetes.md).
  local dir=$1 p
  p="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kubelet-localhost-authority.patch"
  if [[ ! -f $dir/.kube-lab-kubelet-patched ]]; then
    log "kubelet: applying $(basename "$p") (localhost :authority, upstream fix from 1.26)"
    patch -d "$dir" -p1 --forward --batch <"$p" >&2 || die "patch $p failed"
    rm -f "$BIN/kubelet"
    touch "$dir/.kube-lab-kubelet-patched"
  fi
}

build_bins() { # build_bins SRC WHAT...
  local dir=$1; shift
  local what t0
  # (no `-v` here: hack/lib/golang.sh derives build tags from GOFLAGS and breaks on a space)
  export GOPATH=$CACHE/gopath GOCACHE=$CACHE/gocache GOFLAGS=-mod=vendor GO111MODULE=on GOTOOLCHAIN=local
  # the build scripts read the version from git; the Debian source has no .git
  export KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20 KUBE_GIT_TREE_STATE=clean
  export KUBE_GIT_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56
  mkdir -p "$BIN"
  for what in "$@"; do
    local name=${what##*/}
    if [[ -x $BIN/$name ]]; then log "$name: already built ($BIN/$name)"; continue; fi
    t0=$(now_s)
: >"$CACHE/build-$name.log"
    progress_run "building $what (nice; minutes: ~5 on 2 idle cores, more on a busy machine)" \
      "$CACHE/build-$name.log" bash -c 'cd "$1" && nice -n 10 make WHAT="$2"' _ "$dir" "$what" >&2 ||
      die "build of $what failed (log: $CACHE/build-$name.log)"
    local out
    out=$(find "$dir/_output" -type f -name "$name" -perm -u+x | head -1)
    [[ -n $out ]] || die "built $what but found no $name under $dir/_output"
    install -m 0755 "$out" "$BIN/$name.tmp" && mv "$BIN/$name.tmp" "$BIN/$name"
    log "TIMING build $name: $(($(now_s) - t0))s"
  done
}

cmd_install() {
  local t_all t0 src
  t_all=$(now_s)
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.install.lock"; flock 9
  local missing=() p
  for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  if ((${#missing[@]})); then
    t0=$(now_s)
    mkdir -p "$LOG"
    progress_run "apt-get install ${missing[*]}" "$LOG/apt.log" apt-get install "${APT_OPTS[@]}" "${missing[@]}" >&2 ||
      { progress_run "apt-get update; apt-get install ${missing[*]}" "$LOG/apt.log" \
        bash -c 'apt-get update -q && apt-get install "$@"' _ "${APT_OPTS[@]}" "${missing[@]}" >&2; } ||
      die "apt-get install failed (log: $LOG/apt.log)"
    log "TIMING apt-get install: $(($(now_s) - t0))s"
  fi
  t0=$(now_s)
  src=$(fetch_source)
  log "TIMING source: $(($(now_s) - t0))s ($src)"
  fix_vendor "$src"
  patch_kubelet "$src"
  build_bins "$src" cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet
  "$BIN/kube-apiserver" --version >&2
  log "TIMING install total: $(($(now_s) - t_all))s"
}

