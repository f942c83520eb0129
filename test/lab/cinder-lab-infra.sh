# cinder-lab-infra.sh - what Cinder stands on: MariaDB, RabbitMQ, Keystone and Glance
# (the last two in keystone mode only)
# Sourced by test/lab/cinder-lab.sh after its settings (STATE, RUN, LOG, ports, passwords, packages)
# and its ts/log/die/now_ms; not to be run on its own.
# shellcheck shell=bash

# ---------------------------------------------------------------- mariadb
db_url() { # db_url NAME
  if [[ $DB == sqlite ]]; then echo "sqlite:///$STATE/sqlite/$1.sqlite?timeout=60"
  else echo "mysql+pymysql://$1:$DB_PASSWORD@localhost/$1?unix_socket=$MYSQL_SOCK&charset=utf8"; fi
}

mariadb_up() {
  install -d -o mysql -g mysql "$RUN/mysql"
  install -d -o mysql -g mysql "$STATE/mysql"
  if [[ ! -d $STATE/mysql/mysql ]]; then
    log "initialising MariaDB datadir $STATE/mysql"
    mariadb-install-db --no-defaults --user=mysql --datadir="$STATE/mysql" \
      --auth-root-authentication-method=socket --skip-test-db >"$LOG/mariadb-install-db.log" 2>&1 \
      || die "mariadb-install-db failed, see $LOG/mariadb-install-db.log"
  fi
  start_bg mariadb mariadbd --no-defaults --user=mysql --datadir="$STATE/mysql" \
    --socket="$MYSQL_SOCK" --pid-file="$RUN/mysql/mysqld.pid" --skip-networking \
    --log-error="$LOG/mariadb.log" --skip-log-bin --performance-schema=OFF --skip-name-resolve \
    --innodb-buffer-pool-size=64M --innodb-log-file-size=48M --innodb-flush-log-at-trx-commit=2 \
    --innodb-doublewrite=0 --max-connections=500 --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_general_ci --tmpdir=/tmp
  wait_for -s mariadb "mariadb" 60 mysql_q -e 'SELECT 1'
}

mariadb_db() { # mariadb_db NAME : database + user NAME with $DB_PASSWORD
  mysql_q <<EOF
CREATE DATABASE IF NOT EXISTS \`$1\` CHARACTER SET utf8;
CREATE USER IF NOT EXISTS '$1'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
ALTER USER '$1'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON \`$1\`.* TO '$1'@'localhost';
FLUSH PRIVILEGES;
EOF
}

# ---------------------------------------------------------------- rabbitmq
rabbit_env() {
  export HOME=$STATE/rabbitmq
  export RABBITMQ_NODENAME=rabbit@localhost RABBITMQ_USE_LONGNAME=false
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$RABBIT_PORT RABBITMQ_DIST_PORT=25672
  export ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT=4369
  export RABBITMQ_MNESIA_BASE=$STATE/rabbitmq/mnesia RABBITMQ_LOG_BASE=$LOG/rabbitmq
  export RABBITMQ_PID_FILE=$RUN/rabbitmq/beam.pid
  export RABBITMQ_ENABLED_PLUGINS_FILE=$STATE/rabbitmq/enabled_plugins
  export RABBITMQ_CONFIG_FILE=$STATE/rabbitmq/rabbitmq.conf
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

rabbit_up() {
  mkdir -p "$STATE/rabbitmq" "$LOG/rabbitmq" "$RUN/rabbitmq"
  [[ -e $STATE/rabbitmq/enabled_plugins ]] || echo '[].' > "$STATE/rabbitmq/enabled_plugins"
  cat > "$STATE/rabbitmq/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$RABBIT_PORT
loopback_users.guest = true
vm_memory_high_watermark.absolute = 1GB
disk_free_limit.absolute = 50MB
log.file.level = info
EOF
  port_free_or_ours rabbitmq "$RABBIT_PORT" 25672
  (rabbit_env; start_bg rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server)
  wait_for -s rabbitmq "rabbitmq :$RABBIT_PORT" 120 port_open "$RABBIT_PORT"
}

rabbit_down() {
  stop_bg -t 60 -g rabbitmq
  # epmd is started (daemonized) by the Erlang VM; stop it only if it is ours (bound to loopback by us)
  if pgrep -x epmd >/dev/null; then (rabbit_env; epmd -kill >/dev/null 2>&1 || true); fi
}

# ---------------------------------------------------------------- keystone
os_curl() { curl -sS --fail-with-body --max-time 60 "$@"; }

keystone_token() { # admin token, project scoped
  curl -sS --max-time 30 -o /dev/null -D - -H 'Content-Type: application/json' \
    -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"},\"password\":\"$ADMIN_PASSWORD\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"}}}}}" \
    "http://127.0.0.1:$KEYSTONE_PORT/v3/auth/tokens" | awk 'tolower($1)=="x-subject-token:"{print $2}' | tr -d '\r'
}

ks_get_id() { # ks_get_id TOKEN COLLECTION NAME -> id or empty
  os_curl -H "X-Auth-Token: $1" "http://127.0.0.1:$KEYSTONE_PORT/v3/$2?name=$3" | jq -r ".$2[0].id // empty"
}
ks_ensure() { # ks_ensure TOKEN COLLECTION NAME JSON_BODY -> id
  local id; id=$(ks_get_id "$1" "$2" "$3")
  if [[ -z $id ]]; then
    id=$(os_curl -H "X-Auth-Token: $1" -H 'Content-Type: application/json' -d "$4" \
      "http://127.0.0.1:$KEYSTONE_PORT/v3/$2" | jq -r '.[keys[0]].id')
  fi
  echo "$id"
}

ks_service() { # ks_service TOKEN TYPE NAME DESCRIPTION URL : service + public/internal/admin endpoints
  local K="http://127.0.0.1:$KEYSTONE_PORT/v3" H=(-H "X-Auth-Token: $1" -H 'Content-Type: application/json') svc iface
  svc=$(os_curl "${H[@]}" "$K/services?type=$2" | jq -r '.services[0].id // empty')
  if [[ -z $svc ]]; then
    svc=$(os_curl "${H[@]}" -d "{\"service\":{\"name\":\"$3\",\"type\":\"$2\",\"description\":\"$4\",\"enabled\":true}}" "$K/services" | jq -r .service.id)
  fi
  for iface in public internal admin; do
    if ! os_curl "${H[@]}" "$K/endpoints?service_id=$svc&interface=$iface" | jq -e '.endpoints | length > 0' >/dev/null; then
      os_curl "${H[@]}" -d "{\"endpoint\":{\"service_id\":\"$svc\",\"interface\":\"$iface\",\"region_id\":\"RegionOne\",\"url\":\"$5\",\"enabled\":true}}" "$K/endpoints" >/dev/null
    fi
  done
}

keystone_up() {
  local t0; t0=$(now_ms)
  mkdir -p "$STATE/keystone" /var/lib/keystone
  [[ -e /etc/keystone/keystone.conf.cinder-lab-orig || ! -e /etc/keystone/keystone.conf ]] \
    || cp -a /etc/keystone/keystone.conf /etc/keystone/keystone.conf.cinder-lab-orig
  export KEYSTONE_DB_URL; KEYSTONE_DB_URL=$(db_url keystone)
  render "$TPL/keystone.conf.in" "$STATE/keystone/keystone.conf.new"
  if ! cmp -s "$STATE/keystone/keystone.conf.new" /etc/keystone/keystone.conf; then
    stop_bg keystone
    mv "$STATE/keystone/keystone.conf.new" /etc/keystone/keystone.conf
  else rm -f "$STATE/keystone/keystone.conf.new"; fi
  render "$TPL/keystone-uwsgi.ini.in" "$STATE/keystone/keystone-uwsgi.ini"
  if [[ $DB == mysql ]]; then mariadb_db keystone; fi
  if [[ ! -e $STATE/keystone/.bootstrapped ]]; then
    log "keystone db_sync + fernet/credential setup + bootstrap"
    keystone-manage db_sync >>"$LOG/keystone-manage.log" 2>&1 || die "keystone db_sync failed, see $LOG/keystone-manage.log"
    keystone-manage fernet_setup --keystone-user root --keystone-group root >>"$LOG/keystone-manage.log" 2>&1
    keystone-manage credential_setup --keystone-user root --keystone-group root >>"$LOG/keystone-manage.log" 2>&1
    keystone-manage bootstrap --bootstrap-password "$ADMIN_PASSWORD" \
      --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin \
      --bootstrap-service-name keystone --bootstrap-region-id RegionOne \
      --bootstrap-admin-url "http://127.0.0.1:$KEYSTONE_PORT/v3/" \
      --bootstrap-internal-url "http://127.0.0.1:$KEYSTONE_PORT/v3/" \
      --bootstrap-public-url "http://127.0.0.1:$KEYSTONE_PORT/v3/" >>"$LOG/keystone-manage.log" 2>&1 \
      || die "keystone bootstrap failed, see $LOG/keystone-manage.log"
  fi
  port_free_or_ours keystone "$KEYSTONE_PORT"
  start_bg keystone uwsgi --ini "$STATE/keystone/keystone-uwsgi.ini"
  wait_for -s keystone "keystone :$KEYSTONE_PORT" 120 os_curl "http://127.0.0.1:$KEYSTONE_PORT/v3"
  # projects, users, roles, catalog (idempotent; skipped once done for this state dir)
  if [[ -e $STATE/keystone/.bootstrapped ]]; then log "keystone up in $(( ($(now_ms) - t0) ))ms"; return 0; fi
  log "keystone: ensure service project, cinder service user, demo user, volumev3 catalog entry"
  local tok svc_proj demo_proj cinder_user demo_user admin_role service_role member_role
  tok=$(keystone_token); [[ -n $tok ]] || die "cannot get an admin token from keystone"
  local K="http://127.0.0.1:$KEYSTONE_PORT/v3" H=(-H "X-Auth-Token: $tok" -H 'Content-Type: application/json')
  svc_proj=$(ks_ensure "$tok" projects service '{"project":{"name":"service","domain_id":"default","description":"service project"}}')
  demo_proj=$(ks_ensure "$tok" projects demo '{"project":{"name":"demo","domain_id":"default","description":"demo project"}}')
  cinder_user=$(ks_ensure "$tok" users cinder "{\"user\":{\"name\":\"cinder\",\"domain_id\":\"default\",\"password\":\"$CINDER_SERVICE_PASSWORD\"}}")
  demo_user=$(ks_ensure "$tok" users demo "{\"user\":{\"name\":\"demo\",\"domain_id\":\"default\",\"password\":\"$DEMO_PASSWORD\"}}")
  admin_role=$(ks_get_id "$tok" roles admin)
  member_role=$(ks_ensure "$tok" roles member '{"role":{"name":"member"}}')
  service_role=$(ks_ensure "$tok" roles service '{"role":{"name":"service"}}')
  os_curl -X PUT "${H[@]}" "$K/projects/$svc_proj/users/$cinder_user/roles/$admin_role" >/dev/null
  os_curl -X PUT "${H[@]}" "$K/projects/$svc_proj/users/$cinder_user/roles/$service_role" >/dev/null
  os_curl -X PUT "${H[@]}" "$K/projects/$demo_proj/users/$demo_user/roles/$member_role" >/dev/null
  ks_service "$tok" volumev3 cinderv3 "Cinder Volume Service V3" "http://127.0.0.1:$CINDER_PORT/v3/%(project_id)s"
  touch "$STATE/keystone/.bootstrapped"
  log "keystone up in $(( ($(now_ms) - t0) ))ms"
}

# ---------------------------------------------------------------- glance (keystone mode only)
glance_up() {
  local t0; t0=$(now_ms)
  command -v glance-api >/dev/null || die "glance-api is not installed (cinder-lab.sh install)"
  mkdir -p "$STATE/glance/images" "$STATE/glance/staging" "$STATE/glance/lock"
  [[ -e /etc/glance/glance-api.conf.cinder-lab-orig || ! -e /etc/glance/glance-api.conf ]] \
    || cp -a /etc/glance/glance-api.conf /etc/glance/glance-api.conf.cinder-lab-orig
  export GLANCE_DB_URL; GLANCE_DB_URL=$(db_url glance)
  render "$TPL/glance-api.conf.in" "$STATE/glance/glance-api.conf.new"
  if ! cmp -s "$STATE/glance/glance-api.conf.new" /etc/glance/glance-api.conf; then
    stop_bg glance-api
    mv "$STATE/glance/glance-api.conf.new" /etc/glance/glance-api.conf
  else rm -f "$STATE/glance/glance-api.conf.new"; fi
  mariadb_db glance
  if ! is_running glance-api; then
    log "glance-manage db_sync"
    glance-manage --config-file /etc/glance/glance-api.conf db_sync >>"$LOG/glance-manage.log" 2>&1 \
      || die "glance-manage db_sync failed, see $LOG/glance-manage.log"
  fi
  # service user + catalog entry (idempotent; skipped once done for this state dir)
  if [[ ! -e $STATE/glance/.keystone-done ]]; then
    log "keystone: ensure glance service user and image catalog entry"
    local tok svc_proj glance_user admin_role service_role K="http://127.0.0.1:$KEYSTONE_PORT/v3"
    tok=$(keystone_token); [[ -n $tok ]] || die "cannot get an admin token from keystone"
    svc_proj=$(ks_get_id "$tok" projects service)
    glance_user=$(ks_ensure "$tok" users glance "{\"user\":{\"name\":\"glance\",\"domain_id\":\"default\",\"password\":\"$GLANCE_SERVICE_PASSWORD\"}}")
    admin_role=$(ks_get_id "$tok" roles admin)
    service_role=$(ks_ensure "$tok" roles service '{"role":{"name":"service"}}')
    os_curl -X PUT -H "X-Auth-Token: $tok" "$K/projects/$svc_proj/users/$glance_user/roles/$admin_role" >/dev/null
    os_curl -X PUT -H "X-Auth-Token: $tok" "$K/projects/$svc_proj/users/$glance_user/roles/$service_role" >/dev/null
    ks_service "$tok" image glance "OpenStack Image" "http://127.0.0.1:$GLANCE_PORT"
    touch "$STATE/glance/.keystone-done"
  fi
  port_free_or_ours glance-api "$GLANCE_PORT"
  start_bg glance-api glance-api --config-file /etc/glance/glance-api.conf
  wait_for -s glance-api "glance-api :$GLANCE_PORT" 120 os_curl "http://127.0.0.1:$GLANCE_PORT/healthcheck"
  glance_lab_image
  log "glance up in $(( $(now_ms) - t0 ))ms"
}

glance_lab_image() { # the public raw test image $LAB_IMAGE_NAME (1 MiB of zeros), uploaded once
  local tok G="http://127.0.0.1:$GLANCE_PORT/v2" id
  tok=$(keystone_token); [[ -n $tok ]] || die "cannot get an admin token from keystone"
  local H=(-H "X-Auth-Token: $tok")
  if os_curl "${H[@]}" "$G/images?name=$LAB_IMAGE_NAME" | jq -e '.images[] | select(.status=="active")' >/dev/null; then
    return 0
  fi
  # leftovers of an interrupted upload (queued/saving/killed)
  for id in $(os_curl "${H[@]}" "$G/images?name=$LAB_IMAGE_NAME" | jq -r '.images[].id'); do
    os_curl -X DELETE "${H[@]}" "$G/images/$id" >/dev/null || true
  done
  id=$(os_curl "${H[@]}" -H 'Content-Type: application/json' -d "{\"name\":\"$LAB_IMAGE_NAME\",\"disk_format\":\"raw\",\"container_format\":\"bare\",\"visibility\":\"public\"}" "$G/images" | jq -r .id)
  head -c 1048576 /dev/zero | os_curl -X PUT "${H[@]}" -H 'Content-Type: application/octet-stream' --data-binary @- "$G/images/$id/file" >/dev/null \
    || die "uploading image $LAB_IMAGE_NAME failed, see $LOG/glance-api.log"
  os_curl "${H[@]}" "$G/images/$id" | jq -e '.status=="active"' >/dev/null || die "image $LAB_IMAGE_NAME ($id) is not active"
  log "uploaded image $LAB_IMAGE_NAME ($id, 1 MiB raw, public)"
}

