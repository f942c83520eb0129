# cinder-lab-volume.sh - the storage backends (Ceph: 1 mon, 1 mgr, 1 osd; tgtd) and Cinder
# itself (api under uwsgi, scheduler, volume, backup)
# Sourced by test/lab/cinder-lab.sh after its settings (STATE, RUN, LOG, ports, passwords, packages)
# and its ts/log/die/now_ms; not to be run on its own.
# shellcheck shell=bash

# ---------------------------------------------------------------- ceph (1 mon, 1 mgr, 1 osd)
ceph_q() { timeout 60 ceph --connect-timeout 20 "$@"; }

ceph_up() {
  local t0; t0=$(now_ms)
  command -v ceph-mon >/dev/null || die "ceph is not installed (cinder-lab.sh install)"
  mkdir -p "$STATE/ceph" "$RUN/ceph" "$LOG/ceph" /etc/ceph
  if [[ ! -s $STATE/ceph/fsid ]]; then cat /proc/sys/kernel/random/uuid > "$STATE/ceph/fsid"; fi
  if [[ ! -s $STATE/ceph/secret_uuid ]]; then cat /proc/sys/kernel/random/uuid > "$STATE/ceph/secret_uuid"; fi
  export FSID; FSID=$(<"$STATE/ceph/fsid")
  [[ -e /etc/ceph/ceph.conf.cinder-lab-orig || ! -e /etc/ceph/ceph.conf ]] || cp -a /etc/ceph/ceph.conf /etc/ceph/ceph.conf.cinder-lab-orig
  render "$TPL/ceph.conf.in" /etc/ceph/ceph.conf
  local mon_dir=$STATE/ceph/mon/ceph-a mgr_dir=$STATE/ceph/mgr/ceph-x
  if [[ ! -e $mon_dir/done ]]; then
    log "ceph: creating monitor a (fsid $FSID)"
    rm -rf "$mon_dir"; mkdir -p "$mon_dir"
    ceph-authtool --create-keyring "$STATE/ceph/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring /etc/ceph/ceph.client.admin.keyring --gen-key -n client.admin \
      --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
    ceph-authtool "$STATE/ceph/mon.keyring" --import-keyring /etc/ceph/ceph.client.admin.keyring >/dev/null
    monmaptool --create --clobber --fsid "$FSID" --addv a '[v2:127.0.0.1:3300,v1:127.0.0.1:6789]' "$STATE/ceph/monmap" >/dev/null
    ceph-mon --cluster ceph --mkfs -i a --monmap "$STATE/ceph/monmap" --keyring "$STATE/ceph/mon.keyring" \
      >>"$LOG/ceph/mkfs.log" 2>&1 || die "ceph-mon --mkfs failed, see $LOG/ceph/mkfs.log"
    touch "$mon_dir/done"
  fi
  port_free_or_ours ceph-mon 3300 6789
  start_bg ceph-mon ceph-mon -f --cluster ceph -i a
  wait_for -s ceph-mon "ceph mon" 60 ceph_q -s
  if [[ ! -e $mgr_dir/keyring ]]; then
    mkdir -p "$mgr_dir"
    ceph_q auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' -o "$mgr_dir/keyring"
  fi
  start_bg ceph-mgr ceph-mgr -f --cluster ceph -i x
  local osd_id
  if [[ ! -s $STATE/ceph/osd_id ]]; then
    local uuid secret
    uuid=$(cat /proc/sys/kernel/random/uuid); secret=$(ceph-authtool --gen-print-key)
    osd_id=$(echo "{\"cephx_secret\": \"$secret\"}" | ceph_q osd new "$uuid" -i -)
    local osd_dir=$STATE/ceph/osd/ceph-$osd_id
    rm -rf "$osd_dir"; mkdir -p "$osd_dir"
    ceph-authtool --create-keyring "$osd_dir/keyring" --name "osd.$osd_id" --add-key "$secret" >/dev/null
    log "ceph: mkfs osd.$osd_id ($OSD_OBJECTSTORE, $((OSD_SIZE_BYTES / 1073741824)) GiB sparse)"
    ceph-osd --cluster ceph -i "$osd_id" --mkfs --osd-uuid "$uuid" >>"$LOG/ceph/mkfs.log" 2>&1 \
      || die "ceph-osd --mkfs failed, see $LOG/ceph/mkfs.log"
    echo "$osd_id" > "$STATE/ceph/osd_id"
  fi
  osd_id=$(<"$STATE/ceph/osd_id")
  start_bg ceph-osd ceph-osd -f --cluster ceph -i "$osd_id"
  wait_for -s ceph-osd "ceph osd.$osd_id up" 120 bash -c "set -o pipefail; ceph --connect-timeout 10 osd dump --format json | jq -e '.osds[] | select(.osd==$osd_id) | .up==1' | grep -qx true"
  if ! ceph_q osd pool ls | grep -qx volumes; then
    ceph_q osd pool create volumes 32 32 >/dev/null 2>&1
    ceph_q osd pool application enable volumes rbd >/dev/null 2>&1
    rbd pool init volumes
  fi
  if [[ ! -s /etc/ceph/ceph.client.cinder.keyring ]]; then
    ceph_q auth get-or-create client.cinder mon 'profile rbd' osd 'profile rbd pool=volumes' \
      mgr 'profile rbd pool=volumes' -o /etc/ceph/ceph.client.cinder.keyring
  fi
  wait_for "ceph pgs active" 120 bash -c "ceph --connect-timeout 10 pg stat | grep -q 'active+clean' && ! ceph --connect-timeout 10 pg stat | grep -Eq 'creating|peering|unknown|activating'"
  log "ceph up in $(( $(now_ms) - t0 ))ms"
}

ceph_down() {
  stop_bg -t 60 ceph-osd ceph-mgr
  stop_bg ceph-mon
}

# ---------------------------------------------------------------- tgtd (userspace iSCSI target)
tgt_up() {
  command -v tgtd >/dev/null || die "tgt is not installed (cinder-lab.sh install)"
  mkdir -p "$STATE/tgt-volumes" /var/lib/cinder/volumes /etc/tgt/conf.d
  # make tgt-admin pick up the per-volume files cinder writes into /var/lib/cinder/volumes
  echo 'include /var/lib/cinder/volumes/*' > /etc/tgt/conf.d/cinder-lab.conf
  port_free_or_ours tgtd 3260
  start_bg tgtd tgtd -f --iscsi portal=127.0.0.1:3260
  wait_for -s tgtd "tgtd :3260" 30 port_open 3260
  # re-export volumes that exist from an earlier run
  tgt-admin --update ALL >/dev/null 2>&1 || true
}

tgt_down() {
  if is_running tgtd; then
    # tgtd ignores SIGTERM while it has targets: take it offline and ask it to exit
    tgt-admin --offline ALL >/dev/null 2>&1 || true
    tgtadm --lld iscsi --op delete --mode system >/dev/null 2>&1 || true
  fi
  stop_bg -t 10 tgtd
}

# ---------------------------------------------------------------- cinder
api_token() { # token for the cinder API (noauth: "<user>:<project>")
  if [[ $AUTH == keystone ]]; then keystone_token; else echo "$NOAUTH_USER_ID:$NOAUTH_PROJECT_ID"; fi
}
api_project() {
  if [[ $AUTH == keystone ]]; then
    os_curl -H "X-Auth-Token: $1" "http://127.0.0.1:$KEYSTONE_PORT/v3/auth/tokens" -H "X-Subject-Token: $1" | jq -r .token.project.id
  else echo "$NOAUTH_PROJECT_ID"; fi
}

cinder_services_in_db() { # hosts of cinder-volume services known to the DB
  cinder-manage --config-file /etc/cinder/cinder.conf service list 2>/dev/null \
    | awk '$1=="cinder-volume"{print $2}' | sort -u || true
}

cinder_up() {
  local t0; t0=$(now_ms)
  mkdir -p /var/lib/cinder/tmp /var/lib/cinder/coordination /var/lib/cinder/volumes "$STATE/cinder" "$STATE/sqlite"
  [[ -e /etc/cinder/cinder.conf.cinder-lab-orig ]] || cp -a /etc/cinder/cinder.conf /etc/cinder/cinder.conf.cinder-lab-orig
  export AUTH_STRATEGY=$AUTH BACKENDS DB_URL DEBUG RBD_SECRET_UUID
  DB_URL=$(db_url cinder)
  RBD_SECRET_UUID=$(cat "$STATE/ceph/secret_uuid" 2>/dev/null || echo 00000000-0000-0000-0000-000000000000)
  render "$TPL/cinder.conf.in" "$STATE/cinder/cinder.conf.new"
  render "$TPL/cinder-api-uwsgi.ini.in" "$STATE/cinder/cinder-api-uwsgi.ini"
  # out-of-tree driver for the tgt backend
  mkdir -p "$STATE/python"
  if ! diff -rq "$LAB_DIR/drivers/cinder_lab_drivers" "$STATE/python/cinder_lab_drivers" >/dev/null 2>&1; then
    rm -rf "$STATE/python/cinder_lab_drivers"; cp -r "$LAB_DIR/drivers/cinder_lab_drivers" "$STATE/python/"
    stop_bg cinder-volume
  fi
  if ! cmp -s "$STATE/cinder/cinder.conf.new" /etc/cinder/cinder.conf; then
    log "cinder.conf changed -> (re)starting cinder services"
    cinder_down
    mv "$STATE/cinder/cinder.conf.new" /etc/cinder/cinder.conf
  else
    rm -f "$STATE/cinder/cinder.conf.new"
  fi
  if [[ $DB == mysql ]]; then mariadb_db cinder; fi
  # cinder-backup: same cinder.conf plus its own my_ip (see templates/cinder.conf.in)
  mkdir -p "$STATE/backups"
  printf '# Rendered by cinder-lab.sh: overrides for cinder-backup only\n[DEFAULT]\nmy_ip = %s\n' \
    "$LOCAL_ATTACH_IP" > "$STATE/cinder/cinder-backup.conf.new"
  if ! cmp -s "$STATE/cinder/cinder-backup.conf.new" "$STATE/cinder/cinder-backup.conf"; then
    stop_bg cinder-backup
    mv "$STATE/cinder/cinder-backup.conf.new" "$STATE/cinder/cinder-backup.conf"
  else rm -f "$STATE/cinder/cinder-backup.conf.new"; fi
  if ! is_running cinder-api || ! is_running cinder-volume || ! is_running cinder-scheduler || ! is_running cinder-backup; then
    log "cinder-manage db sync"
    cinder-manage --config-file /etc/cinder/cinder.conf db sync >>"$LOG/cinder-manage.log" 2>&1 \
      || die "cinder-manage db sync failed, see $LOG/cinder-manage.log"
    # forget cinder-volume services of backends that are no longer enabled (they would show as "down")
    local svc_host
    for svc_host in $(cinder_services_in_db); do
      [[ ,$BACKENDS, == *,${svc_host#cinder-lab@},* ]] && continue
      log "removing stale service cinder-volume $svc_host"
      cinder-manage --config-file /etc/cinder/cinder.conf service remove cinder-volume "$svc_host" >>"$LOG/cinder-manage.log" 2>&1 || true
    done
  fi
  # order matters: the scheduler must be listening on its fanout queue when cinder-volume
  # publishes its first capabilities report, otherwise the backend is unschedulable until the
  # next periodic report (backend_stats_polling_interval)
  start_bg cinder-scheduler cinder-scheduler --config-file /etc/cinder/cinder.conf
  port_free_or_ours cinder-api "$CINDER_PORT"
  start_bg cinder-api uwsgi --ini "$STATE/cinder/cinder-api-uwsgi.ini"
  wait_for -s cinder-api "cinder-api :$CINDER_PORT" 120 os_curl "http://127.0.0.1:$CINDER_PORT/"
  start_bg cinder-volume env PYTHONPATH="$STATE/python" cinder-volume --config-file /etc/cinder/cinder.conf
  local tok proj; tok=$(api_token); proj=$(api_project "$tok")
  local C="http://127.0.0.1:$CINDER_PORT/v3/$proj" H=(-H "X-Auth-Token: $tok" -H 'Content-Type: application/json' -H 'OpenStack-API-Version: volume 3.70')
  local b nb=0
  for b in ${BACKENDS//,/ }; do
    nb=$((nb + 1))
    wait_for -s cinder-volume "cinder-volume cinder-lab@$b up" 120 bash -c \
      "set -o pipefail; curl -sf -H 'X-Auth-Token: $tok' '$C/os-services?binary=cinder-volume' | jq -e '.services[] | select(.host==\"cinder-lab@$b\" and .state==\"up\" and .status==\"enabled\")'"
    # a public volume type per backend (the __DEFAULT__ type goes wherever the scheduler picks)
    if ! os_curl "${H[@]}" "$C/types?is_public=None" | jq -e ".volume_types[] | select(.name==\"$b\")" >/dev/null; then
      local tid
      tid=$(os_curl "${H[@]}" -d "{\"volume_type\":{\"name\":\"$b\",\"os-volume-type-access:is_public\":true,\"extra_specs\":{\"volume_backend_name\":\"$b\"}}}" "$C/types" | jq -r .volume_type.id)
      log "created volume type $b ($tid)"
    fi
  done
  start_bg cinder-backup cinder-backup --config-file /etc/cinder/cinder.conf --config-file "$STATE/cinder/cinder-backup.conf"
  wait_for -s cinder-backup "cinder-backup up" 120 bash -c \
    "set -o pipefail; curl -sf -H 'X-Auth-Token: $tok' '$C/os-services?binary=cinder-backup' | jq -e '.services[] | select(.host==\"cinder-lab\" and .state==\"up\" and .status==\"enabled\")'"
  # the scheduler needs one stats report from each backend before it can place volumes
  wait_for -s cinder-scheduler "scheduler has stats of $nb backend(s)" 60 bash -c \
    "set -o pipefail; curl -sf -H 'X-Auth-Token: $tok' '$C/scheduler-stats/get_pools' | jq -e '.pools | length >= $nb'"
  log "cinder up in $(( $(now_ms) - t0 ))ms"
}

cinder_down() {
  stop_bg cinder-api cinder-backup cinder-volume cinder-scheduler
}

