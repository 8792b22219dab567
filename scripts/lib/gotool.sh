# shellcheck shell=bash
# shellcheck disable=SC2154  # name, version, module: set by the script that sources this
# Shared steps of the scripts that build a test tool from its Go module once and cache
# it (install-alertmanager.sh, install-helm.sh). Source it, set name, module, version,
# then: gotool_cached (exits when the binary is there), gotool_source (a writable copy of
# the module in $work/src), build $work/$name yourself, and gotool_install.
#
# The binary lives at ${REBOUND_CACHE_DIR:-$HOME/.cache/rebound}/<name>-<version>/<name>
# and is used as it is for as long as it is there. Everything except its path goes to
# stderr, so callers can write bin=$(scripts/install-….sh).

gotool_cached() {
	cache="${REBOUND_CACHE_DIR:-${HOME:?HOME is not set}/.cache/rebound}"
	dir="$cache/$name-$version"
	bin="$dir/$name"
	if [[ -x "$bin" ]]; then
		echo "$bin"
		exit 0
	fi
	if ! command -v go >/dev/null 2>&1; then
		echo "install-$name: go is not on PATH; $name $version is built from its Go module $module" >&2
		exit 1
	fi
	mkdir -p "$dir"
	# Several test binaries may ask at once (go test runs packages in parallel): the lock
	# makes the later ones wait for the first build instead of compiling it again.
	exec 9>"$dir/.lock"
	if command -v flock >/dev/null 2>&1; then
		flock 9
	fi
	if [[ -x "$bin" ]]; then
		echo "$bin"
		exit 0
	fi
}

gotool_source() {
	work="$(mktemp -d "${TMPDIR:-/tmp}/rebound-$name.XXXXXX")"
	trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
	# Everything runs from an empty folder with GOWORK off, so neither Rebound's go.mod
	# nor a go.work is in scope: Rebound's go.mod and go.sum are never read or written,
	# and the tool gets exactly the dependencies its own go.mod pins. GOFLAGS is replaced,
	# not inherited, so that a developer's -mod=vendor or -modfile cannot get in the way.
	export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
	cd "$work" || exit 1
	echo "install-$name: building $name $version from $module (first time only, a few minutes)..." >&2
	start=$SECONDS
	# Download the module (checked against the checksum database like any module) and
	# take a writable copy: the module cache is read-only, and builds may touch go.sum.
	if ! info="$(go mod download -json "$module@$version")"; then
		# The reason is in the JSON's "Error" field, not on stderr.
		echo "install-$name: cannot download $module@$version (GOPROXY=$(go env GOPROXY)):" >&2
		echo "$info" >&2
		exit 1
	fi
	src="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")"
	if [[ -z "$src" || ! -f "$src/go.mod" ]]; then
		echo "install-$name: go mod download $module@$version gave no source folder:" >&2
		echo "$info" >&2
		exit 1
	fi
	cp -R "$src" "$work/src"
	chmod -R u+w "$work/src"
}

gotool_install() {
	# Move into place only once the build is complete: an interrupted build must not
	# leave a file that the next run would take for a good binary.
	mv -f "$work/$name" "$bin.tmp"
	mv -f "$bin.tmp" "$bin"
	echo "install-$name: built $bin in $((SECONDS - start))s" >&2
	echo "$bin"
}
