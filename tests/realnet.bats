#!/usr/bin/env bats
# Real network servers nobody here wrote, each with a client outside the
# tree holding a connection open across the dump (--tcp-established, the
# tree killed) and the restore:
#   redis-server on 127.0.0.1, its data set and the client's connection;
#   nginx (master as root, worker as www-data) with a keep-alive connection
#     that serves a second request after the restore;
#   socat TCP-LISTEN ... EXEC:cat, an echo through a child, with a client
#     streaming a counted sequence (tests/netstream.py) that sees no byte
#     lost, repeated or reordered.
# The clients (tests/netclient.py, tests/netstream.py) are the checkers;
# each is shown to fail under its sabotage mode.

load helpers

setup() {
	stasis_test_setup
	# ports of our own, away from the other suites'
	SVC_PORT=$((21000 + $$ % 5000))
	CLOG=$BATS_TEST_TMPDIR/client.log
	NGINX_DIR='' NGINX_MASTER='' NGINX_EXE=''
}

teardown() {
	# nginx's master first: it would fork a new worker for one killed
	# before it
	if [ -n "$NGINX_MASTER" ] && [ "$(readlink "/proc/$NGINX_MASTER/exe" 2>/dev/null)" = "$NGINX_EXE" ]; then
		kill -KILL "$NGINX_MASTER" 2>/dev/null
		wait_gone "$NGINX_MASTER" 5 || true
	fi
	cleanup_owned
	if [ -n "$NGINX_DIR" ]; then rm -rf "$NGINX_DIR"; fi
	return 0
}

need() { # COMMAND
	command -v "$1" >/dev/null || { echo "FAILED: $1 is not installed (tests/run installs it)"; return 1; }
}

# Wait until something listens on 127.0.0.1:$SVC_PORT (PID must live).
wait_listen() { # PID WHAT
	local i=0
	until ss -Hltn "sport = :$SVC_PORT" | grep -q .; do
		alive "$1" || { die_with_logs "$2 exited before listening"; return 1; }
		i=$((i + 1))
		[ $i -ge 200 ] && { die_with_logs "$2 does not listen on port $SVC_PORT after 10 s"; return 1; }
		sleep 0.05
	done
}

# tests/netclient.py MODE in the background (CPID), until it is READY.
start_client() { # MODE
	(
		close_extra_fds
		exec python3 "$BATS_TEST_DIRNAME/netclient.py" "$1" "$SVC_PORT" "$GOFILE" \
			</dev/null >"$CLOG" 2>&1
	) &
	CPID=$!
	own_pid "$CPID"
	local i=0
	until grep -qx READY "$CLOG" 2>/dev/null; do
		alive "$CPID" || { die_with_logs "the client ended: $(cat "$CLOG")"; return 1; }
		i=$((i + 1))
		[ $i -ge 400 ] && { die_with_logs "the client is not READY after 20 s"; return 1; }
		sleep 0.05
	done
}

# GO: the client checks its connection; it must print PASS.
client_passes() {
	touch "$GOFILE"
	wait_child "$CPID" 60 || die_with_logs "the client still runs 60 s after GO" || return 1
	echo "client: $(cat "$CLOG")"
	[ "$STATUS" -eq 0 ] || die_with_logs "the client exited with $STATUS: $(cat "$CLOG")" || return 1
	grep -q '^PASS' "$CLOG" || die_with_logs "no PASS from the client"
}

# GO under sabotage: the client must print FAIL.
client_fails() {
	touch "$GOFILE"
	wait_child "$CPID" 60 || die_with_logs "the client still runs 60 s after GO" || return 1
	echo "client: $(cat "$CLOG")"
	[ "$STATUS" -eq 1 ] || die_with_logs "the client exited with $STATUS, expected 1 (FAIL)" || return 1
	grep -q '^FAIL: ' "$CLOG" || die_with_logs "no FAIL from the client"
}

# Dump the tree of $PID with its established connections, kill it, wait
# until its IDs are free, restore it (stasis restore, RPID, is the parent
# of the restored tree) and own every restored task.
round_trip() {
	dump_and_kill_tree --tcp-established || return 1
	start_restore
	wait_restored || return 1
	own_image_tree
}

# ---------------------------------------------------------------- redis

start_redis() {
	need redis-server || return 1
	LOG=$BATS_TEST_TMPDIR/redis.out
	start_cmd redis-server --port "$SVC_PORT" --bind 127.0.0.1 --save '' --appendonly no \
		--daemonize no --dir "$BATS_TEST_TMPDIR" --logfile "$BATS_TEST_TMPDIR/redis.log"
	wait_listen "$PID" redis-server
}

@test "redis-server: the data set and a client's open connection survive dump and restore" {
	start_redis
	start_client redis
	round_trip
	client_passes
	# new connections are served too (the listener is back)
	[ "$(redis-cli -p "$SVC_PORT" get stasis:counter)" = 1001 ] ||
		die_with_logs "a new redis-cli connection does not read the counter back"
}

@test "netclient redis: the check fails when the data set is flushed (sabotage)" {
	start_redis
	STASIS_SABOTAGE=redis start_client redis
	client_fails
	grep -q 'data set differs' "$CLOG"
}

# ---------------------------------------------------------------- nginx

# nginx with one worker running as www-data, everything in NGINX_DIR (the
# worker must read its pages: a directory of mode 755 outside the test's
# own temporary tree).
start_nginx() {
	need nginx || return 1
	id www-data >/dev/null 2>&1 || { echo "FAILED: no user www-data"; return 1; }
	NGINX_DIR=$(mktemp -d /tmp/stasis-nginx.XXXXXX) || return 1
	chmod 755 "$NGINX_DIR"
	mkdir "$NGINX_DIR/www"
	seq 1 2000 >"$NGINX_DIR/www/index.html"
	chmod -R a+rX "$NGINX_DIR/www"
	cat >"$NGINX_DIR/nginx.conf" <<-EOF
		worker_processes 1;
		user www-data;
		pid $NGINX_DIR/nginx.pid;
		error_log $NGINX_DIR/error.log;
		events { worker_connections 64; }
		http {
			access_log off;
			keepalive_timeout 300;
			client_body_temp_path $NGINX_DIR/body;
			proxy_temp_path $NGINX_DIR/proxy;
			fastcgi_temp_path $NGINX_DIR/fastcgi;
			uwsgi_temp_path $NGINX_DIR/uwsgi;
			scgi_temp_path $NGINX_DIR/scgi;
			server { listen 127.0.0.1:$SVC_PORT; root $NGINX_DIR/www; }
		}
	EOF
	LOG=$BATS_TEST_TMPDIR/nginx.out
	start_cmd nginx -c "$NGINX_DIR/nginx.conf" -p "$NGINX_DIR" -g 'daemon off; master_process on;'
	NGINX_MASTER=$PID
	NGINX_EXE=${OWNED[$PID]}
	wait_listen "$PID" nginx || return 1
	WORKER=$(pgrep -P "$PID" | head -n 1)
	[ -n "$WORKER" ] || { die_with_logs "nginx has no worker"; return 1; }
	own_pid "$WORKER"
	[ "$(ps -o user= -p "$WORKER")" = www-data ] || die_with_logs "the nginx worker is not www-data's"
}

@test "nginx (worker as www-data): a keep-alive connection serves a second request after dump and restore" {
	start_nginx
	start_client http
	round_trip
	[ "$(ps -o user= -p "$WORKER")" = www-data ] || die_with_logs "the restored worker is not www-data's"
	client_passes
}

@test "netclient http: the check fails when the server closes the connection (sabotage)" {
	start_nginx
	STASIS_SABOTAGE=http start_client http
	client_fails
}

# ---------------------------------------------------------------- socat echo

PROGRESS_FILE() { echo "$BATS_TEST_TMPDIR/progress"; }

echoed() { cat "$(PROGRESS_FILE)" 2>/dev/null || echo 0; }

wait_echoed() { # N SECONDS
	local i=0 limit=$(($2 * 10))
	while [ "$(echoed)" -lt "$1" ]; do
		alive "$CPID" || { die_with_logs "the client ended: $(cat "$CLOG")"; return 1; }
		i=$((i + 1))
		[ $i -ge $limit ] && { die_with_logs "the client has $(echoed) bytes echoed after $2 s, expected $1"; return 1; }
		sleep 0.1
	done
}

start_socat_echo() {
	need socat || return 1
	LOG=$BATS_TEST_TMPDIR/socat.out
	start_cmd socat "TCP-LISTEN:$SVC_PORT,bind=127.0.0.1,reuseaddr" EXEC:cat
	wait_listen "$PID" socat
}

start_streamer() {
	(
		close_extra_fds
		exec python3 "$BATS_TEST_DIRNAME/netstream.py" 127.0.0.1 "$SVC_PORT" "$(PROGRESS_FILE)" \
			"$BATS_TEST_TMPDIR/stop" </dev/null >"$CLOG" 2>&1
	) &
	CPID=$!
	own_pid "$CPID"
}

@test "socat echo (EXEC:cat): a streaming client sees no byte lost, repeated or reordered across dump and restore" {
	start_socat_echo
	start_streamer
	wait_echoed 200000 20
	[ -n "$(pgrep -P "$PID" -x cat)" ] || die_with_logs "socat has no cat child"
	round_trip
	local before
	before=$(echoed)
	wait_echoed $((before + 200000)) 60
	echo "echoed: $before bytes at the restore, $(echoed) after"
	touch "$BATS_TEST_TMPDIR/stop"
	client_passes
	grep -q '^PASS sent .* one connection' "$CLOG"
	# socat ends with the connection
	wait_child "$RPID" 30 || die_with_logs "socat did not end with its connection"
	[ "$STATUS" -eq 0 ] || die_with_logs "the restored socat exited with $STATUS"
}

@test "netstream: the check fails when a byte of the echo is lost (sabotage)" {
	start_socat_echo
	(
		close_extra_fds
		export STASIS_SABOTAGE=stream
		exec python3 "$BATS_TEST_DIRNAME/netstream.py" 127.0.0.1 "$SVC_PORT" "$(PROGRESS_FILE)" \
			"$BATS_TEST_TMPDIR/stop" </dev/null >"$CLOG" 2>&1
	) &
	CPID=$!
	own_pid "$CPID"
	client_fails
}
