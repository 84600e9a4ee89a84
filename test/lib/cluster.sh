# test/lib/cluster.sh — shared by the harness, the shell tests and the benches:
# dependencies, a private install, and throwaway clusters run as user postgres.
# Source it; every function is prefixed tg_.

# The server: Debian's PostgreSQL $TG_PGVER, unless TG_PG_CONFIG names the
# pg_config of another install (a source build: test/matrix.sh), which then
# gives the build, the private install and TG_BIN.
TG_PGVER=${TG_PGVER:-15}
TG_PG_CONFIG=${TG_PG_CONFIG:-}
TG_SYS_BIN=/usr/lib/postgresql/$TG_PGVER/bin
TG_SYS_SHARE=/usr/share/postgresql/$TG_PGVER
TG_PACKAGES="postgresql-$TG_PGVER postgresql-server-dev-$TG_PGVER postgresql-$TG_PGVER-cron postgresql-$TG_PGVER-pgtap libtap-parser-sourcehandler-pgtap-perl make gcc clang bc python3-psycopg python3-celery python3-requests python3-pytest prometheus prometheus-postgres-exporter curl chromium nodejs"

tg_log() { printf '== %s\n' "$*" >&2; }
tg_die() { printf 'harness: %s\n' "$*" >&2; exit 1; }

# Install the Debian packages that are missing (needs root and apt).  A
# guest on the machine: it never stops a cluster it did not create.  The
# server-dev package may upgrade the server packages, so while any Debian
# cluster is online it refuses, unless TG_STOP_CLUSTERS=1 lets it stop them
# for the install and start them again after.  Services the new packages
# bring (prometheus, its exporters) are left disabled.
tg_ensure_deps() {
    local missing=() p online=""
    for p in $TG_PACKAGES "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || tg_die "missing packages (${missing[*]}); run as root or install them"
    command -v pg_lsclusters >/dev/null &&
        online=$(pg_lsclusters -h 2>/dev/null | awk '$4=="online"{print $1 "/" $2}' | tr '\n' ' ')
    if [ -n "$online" ] && [ "${TG_STOP_CLUSTERS:-}" != 1 ]; then
        tg_die "missing packages (${missing[*]}) and the cluster(s) $online are online: installing may upgrade the server under them. Install the packages yourself (apt-get install ${missing[*]}), or run again with TG_STOP_CLUSTERS=1 to have them stopped for the install and started again."
    fi
    tg_log "installing ${missing[*]}"
    local c before
    before=$(dpkg-query -W -f='${Package}\n' 2>/dev/null | sort)
    for c in $online; do pg_ctlcluster "${c%/*}" "${c#*/}" stop || true; done
    apt-get update -qq || tg_die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
        tg_die "apt-get install ${missing[*]} failed"
    for c in $online; do pg_ctlcluster "${c%/*}" "${c#*/}" start || true; done
    # what this install added, dependencies included
    tg_disable_services $(comm -13 <(echo "$before") <(dpkg-query -W -f='${Package}\n' 2>/dev/null | sort))
}

# Leave disabled the services that packages we just installed enabled.
tg_disable_services() {
    local p unit
    systemctl is-system-running >/dev/null 2>&1 || [ "$(systemctl is-system-running 2>/dev/null)" = degraded ] || return 0
    for p in "$@"; do
        for unit in $(dpkg -L "$p" 2>/dev/null | grep -E '^/lib/systemd/system/[^/]+\.service$' | xargs -r -n1 basename); do
            systemctl disable --now "$unit" >/dev/null 2>&1 && tg_log "left $unit disabled (from $p)"
        done
    done
}

# Build the extension (warnings are errors in tests).
tg_build() {
    make -s -j2 WERROR=1 ${TG_PG_CONFIG:+PG_CONFIG=$TG_PG_CONFIG} >/dev/null || tg_die "build failed"
}

# A private copy of PostgreSQL with taskguard installed into it, so parallel
# checkouts never overwrite each other's installed library.  Sets TG_BIN.
tg_private_install() {
    local root=$1
    [ -n "$TG_PG_CONFIG" ] && { tg_private_install_prefix "$root"; return; }
    mkdir -p "$root/usr/lib/postgresql" "$root/usr/share/postgresql"
    rm -rf "$root/usr/lib/postgresql/$TG_PGVER" "$root/usr/share/postgresql/$TG_PGVER"
    cp -a "/usr/lib/postgresql/$TG_PGVER" "$root/usr/lib/postgresql/"
    cp -a "$TG_SYS_SHARE" "$root/usr/share/postgresql/"
    make -s install DESTDIR="$root" >/dev/null || tg_die "make install (private) failed"
    chmod -R a+rX "$root"
    TG_BIN=$root/usr/lib/postgresql/$TG_PGVER/bin
}

# The same for a server installed under one prefix (bin, lib, share): a copy
# of the prefix, relocated under root (PostgreSQL finds its lib and share
# directories relative to its binaries).  Its bin goes first in PATH, so psql
# and pg_prove talk to this server with its own client.
tg_private_install_prefix() {
    local root=$1 prefix
    prefix=$(dirname "$("$TG_PG_CONFIG" --bindir)")
    rm -rf "${root:?}$prefix"
    mkdir -p "$(dirname "$root$prefix")"
    cp -a "$prefix" "$root$prefix"
    make -s install DESTDIR="$root" PG_CONFIG="$TG_PG_CONFIG" >/dev/null || tg_die "make install (private) failed"
    chmod -R a+rX "$root"
    TG_BIN=$root$prefix/bin
    export PATH=$TG_BIN:$PATH
}

# Is a TCP port free on loopback?
tg_port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

tg_pick_port() {
    local p
    for _ in $(seq 1 200); do
        p=$(( 20000 + RANDOM % 30000 ))
        tg_port_free "$p" && { echo "$p"; return; }
    done
    tg_die "no free port"
}

# Run a command as the postgres user (postgres refuses to run as root).
tg_as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# tg_init_cluster DIR PORT [extra conf lines...]: initdb with taskguard preloaded.
# Exports PGHOST PGPORT PGUSER TG_DATA TG_LOGFILE.
tg_init_cluster() {
    local dir=$1 port=$2; shift 2
    mkdir -p "$dir"
    chown postgres: "$dir" 2>/dev/null || true
    chmod 755 "$dir"
    TG_DATA=$dir/data
    TG_LOGFILE=$dir/server.log
    # With TG_PASSWORD set (the demo), the superuser needs that password
    # (scram) and our own commands find it in a private PGPASSFILE; the
    # throwaway test clusters trust local connections for their short life.
    local auth=(--auth=trust)
    if [ -n "${TG_PASSWORD:-}" ]; then
        printf '%s\n' "$TG_PASSWORD" > "$dir/pwfile"
        chown postgres: "$dir/pwfile" 2>/dev/null || true
        chmod 600 "$dir/pwfile"
        auth=(--auth=scram-sha-256 "--pwfile=$dir/pwfile")
        printf '*:%s:*:postgres:%s\n' "$port" "$TG_PASSWORD" > "$dir/pgpass"
        chmod 600 "$dir/pgpass"
        export PGPASSFILE=$dir/pgpass
    fi
    tg_as_pg "$TG_BIN/initdb" -D "$TG_DATA" -U postgres "${auth[@]}" -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; tg_die "initdb failed"; }
    rm -f "$dir/pwfile"
    cat >>"$TG_DATA/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_cron,taskguard'
cron.database_name = 'taskguard'
taskguard.database = 'taskguard'
max_connections = 120
log_line_prefix = '%m [%p] %b '
CONF
    local line
    for line in "$@"; do echo "$line" >>"$TG_DATA/postgresql.conf"; done
    export PGHOST=$dir PGPORT=$port PGUSER=postgres TG_DATA TG_LOGFILE TG_BIN
}

tg_start() {
    tg_as_pg "$TG_BIN/pg_ctl" -D "$TG_DATA" -l "$TG_LOGFILE" -w -t 60 start >/dev/null ||
        { tail -20 "$TG_LOGFILE"; tg_die "server did not start"; }
}

tg_stop() {
    [ -n "${TG_DATA:-}" ] && [ -f "$TG_DATA/postmaster.pid" ] &&
        tg_as_pg "$TG_BIN/pg_ctl" -D "$TG_DATA" -m "${1:-fast}" -w -t 60 stop >/dev/null 2>&1
    return 0
}

# The database the scheduler works in, with taskguard, pg_cron and pgTAP.
tg_create_main_db() {
    psql -X -q -d postgres -c "CREATE DATABASE taskguard" >/dev/null &&
    psql -X -q -d taskguard -v ON_ERROR_STOP=1 \
        -c "CREATE EXTENSION pg_cron" -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION taskguard" >/dev/null ||
        tg_die "could not create database taskguard"
}

# tg_wait_for SECONDS SQL: poll until SQL returns t (a deadline, never a fixed sleep).
tg_wait_for() {
    local secs=$1 sql=$2 db=${3:-${DB:-taskguard}} end
    end=$(( $(date +%s) + secs ))
    while [ "$(date +%s)" -le "$end" ]; do
        [ "$(psql -X -At -d "$db" -c "$sql" 2>/dev/null)" = t ] && return 0
        sleep 0.1
    done
    return 1
}
