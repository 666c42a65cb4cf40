#!/usr/bin/env bash
# Makes sure the services the tests need answer (make services; make test
# runs it first):
#   PostgreSQL at 127.0.0.1:5432, whose postgres role logs in from loopback
#     without a password (or the server of $LUTHIEN_TEST_DATABASE_URL,
#     which is only checked);
#   Redis at 127.0.0.1:6379.
# For each one not answering, the first of these that applies:
#   1. start the installed server (a Debian/Ubuntu PostgreSQL cluster on
#      port 5432; redis-server);
#   2. when a container engine answers (docker info), run it in a
#      container with its port published on loopback
#      (docker-compose.yml's postgres and redis publish no port and want a
#      password, so they are not used);
#   3. on Debian or Ubuntu as root, install the distribution's package
#      (postgresql, trusted for the postgres role on loopback;
#      redis-server) and start it;
# and otherwise say what to do, and fail.
set -euo pipefail

PG_URL="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
PG_IMAGE=postgres:16
REDIS_IMAGE=redis:7

say() { echo "services: $*"; }
fail() {
	echo "services: $*" >&2
	exit 1
}

# wait_for runs its arguments once a second until they succeed, for up
# to 30 seconds.
wait_for() {
	for _ in $(seq 1 30); do
		"$@" && return 0
		sleep 1
	done
	return 1
}

debian_root() {
	[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null &&
		grep -qiE '^(ID|ID_LIKE)=.*(debian|ubuntu)' /etc/os-release 2>/dev/null
}

apt_updated=""
apt_install() {
	if [ -z "$apt_updated" ]; then
		apt-get update -qq
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

containers() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }

# container name image docker-run-arguments... starts the container name,
# made from image on first use.
container() {
	local name=$1 image=$2
	shift 2
	if docker container inspect "$name" >/dev/null 2>&1; then
		docker start "$name" >/dev/null
		say "started container $name"
	else
		docker run -d --name "$name" "$@" "$image" >/dev/null
		say "started container $name ($image)"
	fi
}

# --- PostgreSQL ---

pg_answers() {
	if command -v pg_isready >/dev/null; then
		pg_isready -q -h 127.0.0.1 -p 5432
	else
		(exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
	fi
}

# pg_login succeeds when the tests' role logs in without a password (and
# when psql is missing to check it).
pg_login() {
	! command -v psql >/dev/null || psql -w -Atq -d "$PG_URL" -c 'SELECT 1' >/dev/null 2>&1
}

# pg_cluster prints the version and name of the installed cluster on port
# 5432 (Debian's postgresql-common), if there is one.
pg_cluster() {
	command -v pg_lsclusters >/dev/null || return 0
	pg_lsclusters -h 2>/dev/null | awk '$3 == 5432 { print $1, $2; exit }'
}

pg_start_cluster() {
	local ver name
	read -r ver name <<<"$(pg_cluster)"
	[ -n "$ver" ] || return 1
	pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start ||
		fail "could not start PostgreSQL $ver/$name (as $(id -un)); start it (e.g. sudo pg_ctlcluster $ver $name start) and run this again"
	wait_for pg_answers || fail "PostgreSQL $ver/$name started but does not answer at 127.0.0.1:5432"
	say "started PostgreSQL $ver/$name"
}

# pg_trust lets the postgres role log in from loopback without a password
# in the cluster on port 5432: lines at the top of its pg_hba.conf (the
# first matching line wins), then a reload.
pg_trust() {
	local ver name hba
	read -r ver name <<<"$(pg_cluster)"
	hba=/etc/postgresql/$ver/$name/pg_hba.conf
	if ! grep -q 'added by scripts/services.sh' "$hba"; then
		local tmp
		tmp=$(mktemp)
		{
			echo "# The tests log in as postgres from loopback without a password (added by scripts/services.sh)."
			echo "host all postgres 127.0.0.1/32 trust"
			echo "host all postgres ::1/128 trust"
			cat "$hba"
		} >"$tmp"
		cat "$tmp" >"$hba"
		rm -f "$tmp"
	fi
	pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload
	say "PostgreSQL $ver/$name trusts the postgres role on loopback ($hba)"
}

ensure_postgres() {
	if [ -n "${LUTHIEN_TEST_DATABASE_URL:-}" ]; then
		if command -v pg_isready >/dev/null && ! pg_isready -q -d "$LUTHIEN_TEST_DATABASE_URL"; then
			fail "PostgreSQL of LUTHIEN_TEST_DATABASE_URL does not answer; start it, or unset the variable to use 127.0.0.1:5432"
		fi
		say "PostgreSQL: LUTHIEN_TEST_DATABASE_URL (not managed here)"
		return
	fi
	if pg_answers; then
		say "PostgreSQL answers at 127.0.0.1:5432"
	elif [ -n "$(pg_cluster)" ]; then
		pg_start_cluster
	elif containers; then
		container luthien-test-postgres "$PG_IMAGE" -p 127.0.0.1:5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust
		wait_for pg_answers || fail "the PostgreSQL container does not answer at 127.0.0.1:5432 (docker logs luthien-test-postgres)"
	elif debian_root; then
		say "installing PostgreSQL (apt-get install postgresql)"
		apt_install postgresql
		[ -n "$(pg_cluster)" ] || fail "postgresql was installed, but there is no cluster on port 5432 (pg_lsclusters)"
		pg_answers || pg_start_cluster
		pg_login || pg_trust
	else
		fail "PostgreSQL is not answering at 127.0.0.1:5432 and could not be started here: no installed cluster, no container engine, and not Debian/Ubuntu run as root. Start one whose postgres role logs in from 127.0.0.1 without a password (e.g. docker run -d -p 127.0.0.1:5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust $PG_IMAGE), or set LUTHIEN_TEST_DATABASE_URL to a server where you may create databases."
	fi
	pg_login || fail "PostgreSQL at 127.0.0.1:5432 answers but refuses the postgres role without a password, as the tests log in ($PG_URL). Add 'host all postgres 127.0.0.1/32 trust' at the top of its pg_hba.conf and reload it, or set LUTHIEN_TEST_DATABASE_URL to a server where you may create databases."
}

# --- Redis ---

redis_answers() {
	if command -v redis-cli >/dev/null; then
		[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]
	else
		(
			exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && IFS= read -r -t 2 line <&3 && [[ $line == +PONG* ]]
		) 2>/dev/null
	fi
}

# redis_start runs the installed redis-server as a daemon on loopback,
# without persistence.
redis_start() {
	local dir=/var/lib/redis logdir=/var/log/redis
	if ! mkdir -p "$dir" "$logdir" 2>/dev/null || [ ! -w "$dir" ] || [ ! -w "$logdir" ]; then
		dir=${TMPDIR:-/tmp}/luthien-redis
		logdir=$dir
		mkdir -p "$dir"
	fi
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
		--dir "$dir" --logfile "$logdir/ci.log"
	wait_for redis_answers || fail "redis-server started but does not answer at 127.0.0.1:6379 (see $logdir/ci.log)"
	say "started redis-server (log: $logdir/ci.log)"
}

ensure_redis() {
	if redis_answers; then
		say "Redis answers at 127.0.0.1:6379"
	elif command -v redis-server >/dev/null; then
		redis_start
	elif containers; then
		container luthien-test-redis "$REDIS_IMAGE" -p 127.0.0.1:6379:6379
		wait_for redis_answers || fail "the Redis container does not answer at 127.0.0.1:6379 (docker logs luthien-test-redis)"
	elif debian_root; then
		say "installing Redis (apt-get install redis-server)"
		apt_install redis-server
		# The package starts its own service where systemd runs.
		redis_answers || redis_start
	else
		fail "Redis is not answering at 127.0.0.1:6379 and could not be started here: no redis-server, no container engine, and not Debian/Ubuntu run as root. Start one there (e.g. docker run -d -p 127.0.0.1:6379:6379 $REDIS_IMAGE)."
	fi
}

ensure_postgres
ensure_redis
