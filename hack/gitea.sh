#!/usr/bin/env bash
# gitea.sh builds (once, cached outside the checkout) and runs the real git forge arbor's
# tests talk to: Gitea, on a loopback port, with a sqlite database, an admin user and an
# access token.
#
#   hack/gitea.sh build   build the binary into the cache (idempotent)
#   hack/gitea.sh up      build, start Gitea if it is not running; last line:
#                         export ARBOR_TEST_GITEA_URL=... ARBOR_TEST_GITEA_TOKEN_FILE=...
#   hack/gitea.sh down    stop Gitea and delete its data
#
# Environment: ARBOR_CACHE (default ~/.cache/arbor), ARBOR_GITEA (instance name, default
# arbor), ARBOR_GITEA_PORT (default: a free port near 3000 chosen from the name).
set -euo pipefail

GITEA_VERSION=v1.26.0
GITEA_TAGS="sqlite sqlite_unlock_notify"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${ARBOR_CACHE:-$HOME/.cache/arbor}
NAME=${ARBOR_GITEA:-arbor}
BIN=$CACHE/bin/gitea-$GITEA_VERSION
# SRC is a writable copy of the module: the build runs inside it so the module's own
# go.mod (its replace lines) and go.sum apply, and Gitea reads its locale files from
# its options/ directory at run time (STATIC_ROOT_PATH).
SRC=$BIN/src
WORK=$CACHE/gitea/$NAME
ADMIN=arbor-admin

log() { echo "gitea: $*" >&2; }

# stamp names the inputs of the build: the version, the build tags and this script's
# build function.
stamp() { { echo "$GITEA_VERSION $GITEA_TAGS"; declare -f build; } | sha256sum | cut -c1-16; }

build() {
	local want; want=$(stamp)
	if [[ -f $BIN/.stamp && $(cat "$BIN/.stamp") == "$want" && -x $BIN/gitea && -d $SRC/options ]]; then return 0; fi
	local dir
	dir=$(cd "${TMPDIR:-/tmp}" && GOFLAGS= go mod download -json "code.gitea.io/gitea@$GITEA_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -n $dir && -f $dir/go.mod ]] || { log "cannot download the code.gitea.io/gitea $GITEA_VERSION module"; return 1; }
	mkdir -p "$BIN"
	rm -rf "$SRC" "$SRC.tmp"
	cp -r "$dir" "$SRC.tmp"
	chmod -R u+w "$SRC.tmp"
	mv "$SRC.tmp" "$SRC"
	log "building gitea $GITEA_VERSION (first time only; about 10 minutes on 2 cores)"
	(cd "$SRC" && GOFLAGS= CGO_ENABLED=1 nice -n 19 go build -trimpath -tags "$GITEA_TAGS" \
		-ldflags "-s -w -X main.Version=${GITEA_VERSION#v}" -o "$BIN/gitea.tmp" . && mv "$BIN/gitea.tmp" "$BIN/gitea")
	echo "$want" >"$BIN/.stamp"
}

# listening tells whether something accepts connections on loopback port $1.
listening() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# answers tells whether Gitea answers its API on port $1.
answers() {
	timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf 'GET /api/v1/version HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && head -n1 <&3" 2>/dev/null | grep -q ' 200 '
}

# port prints the instance's port: ARBOR_GITEA_PORT, or the first free port from a
# start derived from the instance name, so two instances (two developers' branches)
# rarely collide and never share a port.
port() {
	if [[ -n ${ARBOR_GITEA_PORT:-} ]]; then echo "$ARBOR_GITEA_PORT"; return; fi
	local p=$((3000 + $(printf '%s' "$NAME" | cksum | cut -d' ' -f1) % 500)) i
	for ((i = 0; i < 200; i++, p++)); do
		listening "$p" || { echo "$p"; return; }
	done
	log "no free port in 3000-3700"; return 1
}

# pid prints the pid of the Gitea this script started for the instance, if it still
# runs: the pid file's process, checked to be Gitea on this instance's configuration,
# so a stale pid file never names someone else's process.
pid() {
	local p; p=$(cat "$WORK/gitea.pid" 2>/dev/null) || return 1
	[[ $p =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "--config $WORK/app.ini" && echo "$p"
}

running() {
	pid >/dev/null && [[ -f $WORK/port ]] && answers "$(cat "$WORK/port")"
}

# configHash names the configuration an instance is created with: this script.
configHash() { sha256sum <"$ROOT/hack/gitea.sh" | cut -c1-16; }

# appIni writes the instance's configuration for port $1.
appIni() {
	local secret; secret=$(head -c 32 /dev/urandom | sha256sum | cut -c1-40)
	cat >"$WORK/app.ini" <<-EOF
	APP_NAME = arbor test forge
	RUN_MODE = prod
	RUN_USER = $(id -un)
	WORK_PATH = $WORK

	[server]
	PROTOCOL = http
	HTTP_ADDR = 127.0.0.1
	HTTP_PORT = $1
	DOMAIN = 127.0.0.1
	ROOT_URL = http://127.0.0.1:$1/
	APP_DATA_PATH = $WORK/data
	STATIC_ROOT_PATH = $SRC
	OFFLINE_MODE = true
	DISABLE_SSH = true
	START_SSH_SERVER = false
	LFS_START_SERVER = false

	[database]
	DB_TYPE = sqlite3
	PATH = $WORK/data/gitea.db

	[repository]
	ROOT = $WORK/repositories
	DEFAULT_BRANCH = main

	[security]
	INSTALL_LOCK = true
	SECRET_KEY = $secret

	[service]
	DISABLE_REGISTRATION = true

	[webhook]
	ALLOWED_HOST_LIST = loopback

	[indexer]
	ISSUE_INDEXER_TYPE = db

	[actions]
	ENABLED = false

	[packages]
	ENABLED = false

	[oauth2]
	ENABLED = false

	[cron.update_checker]
	ENABLED = false

	[mailer]
	ENABLED = false

	[log]
	MODE = file
	LEVEL = Info
	ROOT_PATH = $WORK/log
	EOF
}

# gitea runs the binary on the instance's configuration.
gitea() { "$BIN/gitea" --config "$WORK/app.ini" --work-path "$WORK" "$@"; }

# create makes a fresh instance: configuration, database, admin user, token.
create() {
	local p; p=$(port)
	rm -rf "$WORK"
	mkdir -p "$WORK/data" "$WORK/log"
	appIni "$p"
	echo "$p" >"$WORK/port"
	log "creating the database and the admin user $ADMIN"
	gitea migrate >"$WORK/log/setup.log" 2>&1 || { cat "$WORK/log/setup.log" >&2; return 1; }
	gitea admin user create --admin --username "$ADMIN" --email "$ADMIN@arbor.invalid" \
		--random-password --must-change-password=false >>"$WORK/log/setup.log" 2>&1 ||
		{ cat "$WORK/log/setup.log" >&2; return 1; }
	# As root the command prints a warning line before the token: the token is the last line.
	local token
	token=$(gitea admin user generate-access-token --username "$ADMIN" --token-name arbor-test --scopes all --raw 2>>"$WORK/log/setup.log" | tail -n1)
	[[ $token =~ ^[0-9a-f]{40}$ ]] || { log "generate-access-token printed no token"; cat "$WORK/log/setup.log" >&2; return 1; }
	(umask 077 && printf '%s\n' "$token" >"$WORK/token")
	configHash >"$WORK/arbor-config.hash"
}

start() {
	local p i; p=$(cat "$WORK/port")
	log "starting gitea on 127.0.0.1:$p (log: $WORK/log)"
	# setsid: Gitea outlives this script and an interrupt of the make that ran it.
	setsid "$BIN/gitea" --config "$WORK/app.ini" --work-path "$WORK" web --pid "$WORK/gitea.pid" \
		>>"$WORK/log/stdout.log" 2>&1 </dev/null &
	for ((i = 0; i < 120; i++)); do
		answers "$p" && return 0
		kill -0 $! 2>/dev/null || break
		sleep 1
	done
	log "gitea did not answer on 127.0.0.1:$p"; tail -n 30 "$WORK/log/stdout.log" >&2; return 1
}

up() {
	build
	[[ $(id -u) == 0 ]] && export GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true
	if running && [[ $(cat "$WORK/arbor-config.hash" 2>/dev/null) != "$(configHash)" ]]; then
		log "gitea $NAME was created by another version of hack/gitea.sh: run '$0 down' then '$0 up' to recreate it"
	fi
	if ! running; then
		stop
		create
		start
	fi
	echo "export ARBOR_TEST_GITEA_URL=http://127.0.0.1:$(cat "$WORK/port") ARBOR_TEST_GITEA_TOKEN_FILE=$WORK/token"
}

# stop ends the Gitea this script started for the instance (by its pid file), if any.
stop() {
	local p i; p=$(pid) || return 0
	kill "$p"
	for ((i = 0; i < 30; i++)); do kill -0 "$p" 2>/dev/null || return 0; sleep 1; done
	log "gitea (pid $p) did not stop within 30 s"; return 1
}

down() {
	stop
	rm -rf "$WORK"
}

case "${1:-up}" in
build) build ;;
up) up ;;
down) down ;;
bin) echo "$BIN" ;;
*) echo "usage: $0 build|up|down|bin" >&2; exit 2 ;;
esac
