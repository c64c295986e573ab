#!/usr/bin/env bash
# Clockface installer for Raspberry Pi OS (Debian bookworm, arm64) and Debian servers.
#
#   sudo ./systemd/install.sh --bundle door-1.tar.gz          # a terminal (role read from the bundle)
#   sudo ./systemd/install.sh --bundle door-1.tar.gz --tpm2   # a terminal whose card pepper must be sealed to its TPM2
#   sudo ./systemd/install.sh --bundle site-1.tar.gz          # a gateway
#   sudo ./systemd/install.sh --role cloud --cloud-keys acme/cloud/acme  # the cloud and a tenant keyring
#   sudo ./systemd/install.sh --bundle door-1-rotated.tar.gz  # apply a rotated bundle: reloads the unit (no restart)
#   sudo ./systemd/install.sh --uninstall [--purge]           # remove units and program; --purge also config, data, users
#
# Idempotent: running it again with the same bundle changes nothing and restarts nothing. A new
# TLS key, certificate or CA alone is applied with `systemctl reload` (the service re-reads them
# on SIGHUP and keeps running); any other change to the bundle, the program or the unit restarts
# it. Files a new bundle no longer has are removed. A terminal's card pepper is never installed in
# plain: it is encrypted with `systemd-creds` into /etc/clockface/device/card-pepper.cred (sealed
# to the TPM2 where the board has one, else to the host key) and any plaintext copy is removed.
# Options:
#   --bundle PATH      device or gateway bundle (.tar.gz or folder) from `clockface provision`
#   --role ROLE        device | gateway | cloud (default: from the bundle)
#   --cloud-keys DIR   (cloud) a tenant keyring from `provision tenant export-cloud`; installed as
#                      /etc/clockface/cloud/tenants/<tenant>/ (the config's keysDir), 0640 root:clockface-cloud
#   --source DIR       the Clockface release to install (default: the folder above this script)
#   --root DIR         install into DIR instead of /, and only print the commands that would change
#                      the system (apt-get, useradd, systemctl, chown): a dry run you can inspect
#   --tpm2             (device) seal the card pepper to the TPM2 and the host key, and refuse to
#                      install without a TPM2 (default: the TPM2 when present, else the host key)
#   --no-start         install and enable, but do not start
#   --skip-packages    do not install Node or Debian packages
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE="$(cd "$SCRIPT_DIR/.." && pwd)"
ROOT=""
BUNDLE=""
ROLE=""
UNINSTALL=0
PURGE=0
START=1
PACKAGES=1
CLOUD_KEYS=()
NODE_MAJOR=20
# systemd-creds --with-key for the card pepper: auto = TPM2 (+ host key) when present, else host key.
PEPPER_KEY=auto

say() { printf 'clockface-install: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

while (($#)); do
  case "$1" in
    --bundle) BUNDLE="${2:?--bundle needs a path}"; shift 2 ;;
    --role) ROLE="${2:?--role needs device, gateway or cloud}"; shift 2 ;;
    --source) SOURCE="$(cd "${2:?--source needs a folder}" && pwd)"; shift 2 ;;
    --root) ROOT="${2:?--root needs a folder}"; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    --no-start) START=0; shift ;;
    --skip-packages) PACKAGES=0; shift ;;
    --cloud-keys) CLOUD_KEYS+=("${2:?--cloud-keys needs a folder}"); shift 2 ;;
    --tpm2) PEPPER_KEY=host+tpm2; shift ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

if [[ -n "$ROOT" ]]; then
  mkdir -p "$ROOT"
  ROOT="$(cd "$ROOT" && pwd)"
  [[ "$ROOT" != "/" ]] || ROOT=""
fi
[[ -n "$ROOT" || $EUID -eq 0 ]] || die "run as root (sudo), or use --root DIR for a dry run"

# Commands that change the system beyond files: run for real, or only shown under --root.
sys() {
  if [[ -n "$ROOT" ]]; then
    printf 'would run: %s\n' "$*"
  else
    "$@"
  fi
}

P() { printf '%s%s' "$ROOT" "$1"; }

APP=/opt/clockface
BIN=/usr/bin/clockface
UNITDIR=/etc/systemd/system
CONFROOT=/etc/clockface
DATAROOT=/var/lib/clockface

# Installs a file only when its content or mode differs; prints whether it changed.
CHANGED=0
put() { # put MODE SRC DEST
  local mode="$1" src="$2" dest
  dest="$(P "$3")"
  mkdir -p "$(dirname "$dest")"
  if [[ -f "$dest" ]] && cmp -s "$src" "$dest" && [[ "$(stat -c %a "$dest")" == "${mode#0}" ]]; then
    return 0
  fi
  install -m "$mode" "$src" "$dest"
  say "installed $3 ($mode)"
  CHANGED=1
}

owner() { # owner USER:GROUP PATH...
  local who="$1"; shift
  local p
  for p in "$@"; do sys chown "$who" "$p"; done
}

# ---- uninstall ---------------------------------------------------------------------------------
if ((UNINSTALL)); then
  for role in device gateway cloud; do
    unit="clockface-$role.service"
    if [[ -f "$(P "$UNITDIR/$unit")" ]]; then
      sys systemctl disable --now "$unit" || true
      rm -f "$(P "$UNITDIR/$unit")"
      rm -rf "$(P "$UNITDIR/$unit.d")"
      say "removed $unit"
    fi
  done
  sys systemctl daemon-reload
  rm -f "$(P "$BIN")"
  rm -rf "$(P "$APP")"
  if ((PURGE)); then
    rm -rf "$(P "$CONFROOT")" "$(P "$DATAROOT")"
    for role in device gateway cloud; do
      if [[ -n "$ROOT" ]] || id "clockface-$role" >/dev/null 2>&1; then sys userdel "clockface-$role" || true; fi
    done
    say "purged config, data and service users"
  else
    say "kept $CONFROOT and $DATAROOT (use --purge to remove them)"
  fi
  exit 0
fi

# ---- the bundle --------------------------------------------------------------------------------
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
BUNDLE_DIR=""
if [[ -n "$BUNDLE" ]]; then
  if [[ -d "$BUNDLE" ]]; then
    BUNDLE_DIR="$(cd "$BUNDLE" && pwd)"
  elif [[ -f "$BUNDLE" ]]; then
    # Refuse archives with absolute paths or "..": a bundle unpacks into one folder, nowhere else.
    if tar -tzf "$BUNDLE" | grep -Eq '(^/|(^|/)\.\.(/|$))'; then die "bundle $BUNDLE has unsafe paths"; fi
    tar -xzf "$BUNDLE" -C "$WORK" --no-same-owner
    BUNDLE_DIR="$(find "$WORK" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
  else
    die "bundle $BUNDLE does not exist"
  fi
  [[ -f "$BUNDLE_DIR/config.json" ]] || die "bundle has no config.json"
  if grep -q '"device":' "$BUNDLE_DIR/config.json"; then bundle_role=device
  elif grep -q '"gateway":' "$BUNDLE_DIR/config.json"; then bundle_role=gateway
  else die "bundle config.json names neither a device nor a gateway"; fi
  [[ -z "$ROLE" || "$ROLE" == "$bundle_role" ]] || die "--role $ROLE does not match the $bundle_role bundle"
  ROLE="$bundle_role"
fi
[[ "$ROLE" =~ ^(device|gateway|cloud)$ ]] || die "give --bundle, or --role device|gateway|cloud"
USER_NAME="clockface-$ROLE"
UNIT="clockface-$ROLE.service"
[[ -f "$SCRIPT_DIR/$UNIT" ]] || die "unit file $SCRIPT_DIR/$UNIT is missing"

case "$ROLE" in
  device) REQUIRED=(config.json ca.crt device.crt device.key device-signing.key device-sealing.key cloud-sealing.pub admin-signing.pub card-pepper.key)
          SECRETS=(device-signing.key device-sealing.key) ;;
  gateway) REQUIRED=(config.json ca.crt gateway.crt gateway.key)
           SECRETS=(gateway.token) ;;
  cloud) REQUIRED=(); SECRETS=() ;;
esac
if [[ -n "$BUNDLE_DIR" ]]; then
  for f in "${REQUIRED[@]}"; do [[ -f "$BUNDLE_DIR/$f" ]] || die "bundle is incomplete: $f is missing"; done
fi

# ---- packages ----------------------------------------------------------------------------------
if ((PACKAGES)); then
  say "installing system packages"
  pkgs=(ca-certificates curl gnupg python3 make g++)
  [[ "$ROLE" == device ]] && pkgs+=(rpicam-apps ffmpeg)
  sys apt-get update -qq
  sys env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
  have_node=0
  if command -v node >/dev/null 2>&1 && [[ "$(node -p 'process.versions.node.split(".")[0]')" -ge $NODE_MAJOR ]]; then have_node=1; fi
  if ((!have_node)) || [[ -n "$ROOT" ]]; then
    # Bookworm ships Node 18; the services need 20. NodeSource's signed apt repository provides it.
    say "adding the Node.js $NODE_MAJOR apt repository (NodeSource)"
    sys install -d -m 0755 /etc/apt/keyrings
    sys sh -c "curl -fsSL https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key | gpg --dearmor --yes -o /etc/apt/keyrings/nodesource.gpg"
    sys sh -c "echo 'deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_$NODE_MAJOR.x nodistro main' > /etc/apt/sources.list.d/nodesource.list"
    sys apt-get update -qq
    sys env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs
  fi
fi

# ---- users and folders -------------------------------------------------------------------------
if [[ -n "$ROOT" ]] || ! id "$USER_NAME" >/dev/null 2>&1; then
  sys useradd --system --user-group --no-create-home --home-dir "$DATAROOT/$ROLE" --shell /usr/sbin/nologin "$USER_NAME"
fi
if [[ "$ROLE" == device ]]; then
  for g in gpio dialout video; do
    if [[ -n "$ROOT" ]] || ! getent group "$g" >/dev/null; then sys groupadd --system -f "$g"; fi
  done
fi
install -d -m 0755 "$(P "$CONFROOT")"
install -d -m 0750 "$(P "$CONFROOT/$ROLE")"
owner "root:$USER_NAME" "$CONFROOT/$ROLE"
install -d -m 0700 "$(P "$DATAROOT/$ROLE")"
owner "$USER_NAME:$USER_NAME" "$DATAROOT/$ROLE"

# ---- program -----------------------------------------------------------------------------------
PROGRAM_CHANGED=0
if [[ -f "$SOURCE/package.json" ]]; then
  say "installing the program into $APP"
  mkdir -p "$(P "$APP")"
  before=$CHANGED; CHANGED=0
  for f in package.json package-lock.json; do [[ -f "$SOURCE/$f" ]] && put 0644 "$SOURCE/$f" "$APP/$f"; done
  if [[ -d "$SOURCE/dist" ]]; then
    if ! diff -rq "$SOURCE/dist" "$(P "$APP/dist")" >/dev/null 2>&1; then
      rm -rf "$(P "$APP/dist.new")"
      cp -r "$SOURCE/dist" "$(P "$APP/dist.new")"
      rm -rf "$(P "$APP/dist")"
      mv "$(P "$APP/dist.new")" "$(P "$APP/dist")"
      say "installed $APP/dist"
      CHANGED=1
    fi
  else
    say "note: $SOURCE has no dist/ (run npm run build there first)"
  fi
  ((CHANGED)) && PROGRAM_CHANGED=1
  CHANGED=$((before | CHANGED))
  # Dependencies only when the lockfile differs from the one last installed (npm ci takes
  # minutes on a Pi and compiles better-sqlite3); the stamp is written only after it succeeded.
  if [[ -f "$SOURCE/package-lock.json" ]]; then
    lock_sum="$(sha256sum "$SOURCE/package-lock.json" | cut -d' ' -f1)"
    stamp="$(P "$APP/.npm-ci.sha256")"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_sum" ]]; then
      sys sh -c "cd $APP && npm ci --omit=dev --no-audit --no-fund"
      printf '%s\n' "$lock_sum" >"$stamp"
      PROGRAM_CHANGED=1
      CHANGED=1
    fi
  else
    say "note: $SOURCE has no package-lock.json; dependencies not installed"
  fi
fi
before=$CHANGED; CHANGED=0
printf '#!/bin/sh\nexec /usr/bin/node %s/dist/cli/main.js "$@"\n' "$APP" >"$WORK/clockface"
put 0755 "$WORK/clockface" "$BIN"
((CHANGED)) && PROGRAM_CHANGED=1
CHANGED=$((before | CHANGED))

# ---- config bundle -----------------------------------------------------------------------------
# What `systemctl reload` applies (SIGHUP: the service re-reads them); anything else restarts.
RELOADABLE=(ca.crt "$ROLE.crt" "$ROLE.key")
CONFIG_CHANGED=0
RELOAD_ONLY=1
if [[ -n "$BUNDLE_DIR" ]]; then
  # Refuse a bundle whose certificate does not chain, match its key or carry its identity
  # before it replaces a working config.
  sys "$BIN" provision check --bundle "$BUNDLE_DIR"
  say "applying the $ROLE bundle to $CONFROOT/$ROLE"
  for f in "$BUNDLE_DIR"/*; do
    name="$(basename "$f")"
    [[ -f "$f" ]] || continue
    # The card pepper is sealed below, never copied in plain.
    [[ "$ROLE" == device && "$name" == card-pepper.key ]] && continue
    before=$CHANGED
    CHANGED=0
    if [[ " ${SECRETS[*]} " == *" $name "* ]]; then
      # Private keys: root only. systemd hands them to the service as credentials.
      put 0600 "$f" "$CONFROOT/$ROLE/$name"
      owner root:root "$CONFROOT/$ROLE/$name"
    else
      # Everything else, the TLS key included (re-read on reload), for the service's group only.
      put 0640 "$f" "$CONFROOT/$ROLE/$name"
      owner "root:$USER_NAME" "$CONFROOT/$ROLE/$name"
    fi
    if ((CHANGED)); then
      CONFIG_CHANGED=1
      [[ " ${RELOADABLE[*]} " == *" $name "* ]] || RELOAD_ONLY=0
    fi
    CHANGED=$((before | CHANGED))
  done
  # A file the new bundle no longer has (a token after leaving the cloud, a dropped option)
  # must not linger: the service would keep using it.
  for f in "$(P "$CONFROOT/$ROLE")"/*; do
    [[ -f "$f" ]] || continue
    name="$(basename "$f")"
    # The sealed pepper and its fingerprint are made from the bundle's card-pepper.key, not copied.
    [[ "$ROLE" == device && ( "$name" == card-pepper.cred || "$name" == card-pepper.cred.sha256 ) ]] && continue
    if [[ ! -f "$BUNDLE_DIR/$name" ]]; then
      rm -f "$f"
      say "removed $CONFROOT/$ROLE/$name (not in the new bundle)"
      CONFIG_CHANGED=1
      RELOAD_ONLY=0
      CHANGED=1
    fi
  done
fi

# ---- the terminal's card pepper: an encrypted systemd credential -------------------------------
# With the pepper, a stolen disk's card and PIN hashes can be tested offline; without it they
# cannot. systemd-creds encrypts it to the TPM2 when the board has one (it cannot be decrypted off
# the board) or else to the host key in /var/lib/systemd/credential.secret (which is on the same
# disk: that only keeps the pepper out of backups and copies of /etc). The unit loads it with
# LoadCredentialEncrypted=card-pepper:… Encryption is not deterministic, so a fingerprint of the
# pepper and key choice (SHA-256 of 32 random bytes: no help in guessing it) decides whether a
# new bundle or --tpm2 needs it sealed again.
if [[ "$ROLE" == device && -n "$BUNDLE_DIR" ]]; then
  PEPPER_CRED="$CONFROOT/device/card-pepper.cred"
  fingerprint="$(sha256sum <"$BUNDLE_DIR/card-pepper.key" | cut -d' ' -f1) $PEPPER_KEY"
  stamp="$(P "$PEPPER_CRED.sha256")"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$fingerprint" || ( -z "$ROOT" && ! -f "$PEPPER_CRED" ) ]]; then
    [[ -n "$ROOT" ]] || command -v systemd-creds >/dev/null || die "systemd-creds is missing (systemd 250 or later is needed to seal the card pepper)"
    sys systemd-creds encrypt --name=card-pepper "--with-key=$PEPPER_KEY" "$BUNDLE_DIR/card-pepper.key" "$PEPPER_CRED" \
      || die "systemd-creds could not seal the card pepper with --with-key=$PEPPER_KEY (--tpm2 needs a TPM2: see systemd-creds has-tpm2)"
    [[ -n "$ROOT" ]] || chmod 0600 "$PEPPER_CRED"
    owner root:root "$PEPPER_CRED"
    install -m 0600 /dev/null "$stamp"
    printf '%s\n' "$fingerprint" >"$stamp"
    say "sealed the card pepper into $PEPPER_CRED (systemd-creds --with-key=$PEPPER_KEY)"
    CONFIG_CHANGED=1
    RELOAD_ONLY=0
    CHANGED=1
  fi
  if [[ -f "$(P "$CONFROOT/device/card-pepper.key")" ]]; then
    rm -f "$(P "$CONFROOT/device/card-pepper.key")"
    say "removed the plaintext $CONFROOT/device/card-pepper.key (the service reads the sealed credential)"
    CONFIG_CHANGED=1
    RELOAD_ONLY=0
    CHANGED=1
  fi
  say "note: the bundle still holds the card pepper in plain; delete $BUNDLE once this terminal runs"
fi

# ---- cloud tenant keyrings ---------------------------------------------------------------------
# keysDir folders: root-owned, group clockface-cloud, 0750/0640, so the service (and no other
# user) can read them. Keyrings copied in by hand are brought to the same modes on every run.
if [[ "$ROLE" == cloud ]]; then
  for src in "${CLOUD_KEYS[@]}"; do
    [[ -d "$src" ]] || die "--cloud-keys $src is not a folder"
    tenant="$(basename "$(cd "$src" && pwd)")"
    [[ "$tenant" =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || die "--cloud-keys folder name $tenant is not a tenant id"
    [[ -f "$src/cloud-sealing.key" && -f "$src/admin-signing.pub" ]] || die "--cloud-keys $src is not a keyring from provision tenant export-cloud"
    [[ ! -f "$src/ca.key" ]] || die "--cloud-keys $src holds the CA key; export with provision tenant export-cloud instead"
    for f in "$src"/*; do
      [[ -f "$f" ]] || continue
      before=$CHANGED; CHANGED=0
      put 0640 "$f" "$CONFROOT/cloud/tenants/$tenant/$(basename "$f")"
      ((CHANGED)) && CONFIG_CHANGED=1 && RELOAD_ONLY=0
      CHANGED=$((before | CHANGED))
    done
  done
  if [[ -d "$(P "$CONFROOT/cloud/tenants")" ]]; then
    chmod 0750 "$(P "$CONFROOT/cloud/tenants")"
    owner "root:$USER_NAME" "$CONFROOT/cloud/tenants"
    for d in "$(P "$CONFROOT/cloud/tenants")"/*/; do
      [[ -d "$d" ]] || continue
      rel="${d#"$ROOT"}"; rel="${rel%/}"
      chmod 0750 "$d"
      owner "root:$USER_NAME" "$rel"
      for f in "$d"*; do
        [[ -f "$f" ]] || continue
        chmod 0640 "$f"
        owner "root:$USER_NAME" "${f#"$ROOT"}"
      done
    done
  fi
fi

# ---- units -------------------------------------------------------------------------------------
UNIT_CHANGED=0
before=$CHANGED; CHANGED=0
put 0644 "$SCRIPT_DIR/$UNIT" "$UNITDIR/$UNIT"
if [[ "$ROLE" == gateway && -f "$(P "$CONFROOT/gateway/gateway.token")" ]]; then
  # The cloud token is a credential too, but only gateways registered with a cloud have one.
  cat >"$WORK/cloud-token.conf" <<'EOF'
[Service]
LoadCredential=gateway.token:/etc/clockface/gateway/gateway.token
Environment=CLOCKFACE_CLOUD__TOKEN_FILE=%d/gateway.token
EOF
  put 0644 "$WORK/cloud-token.conf" "$UNITDIR/$UNIT.d/cloud-token.conf"
elif [[ "$ROLE" == gateway && -f "$(P "$UNITDIR/$UNIT.d/cloud-token.conf")" ]]; then
  # The token left with the bundle: a credential whose file is gone would stop the unit starting.
  rm -f "$(P "$UNITDIR/$UNIT.d/cloud-token.conf")"
  say "removed $UNITDIR/$UNIT.d/cloud-token.conf"
  CHANGED=1
fi
if [[ "$ROLE" == cloud && -f "$(P "$CONFROOT/cloud/tls.key")" ]]; then
  # Only a cloud that terminates TLS itself has a key; behind a proxy there is none to load.
  cat >"$WORK/tls-key.conf" <<'EOF'
[Service]
LoadCredential=tls.key:/etc/clockface/cloud/tls.key
Environment=CLOCKFACE_HTTP__TLS__KEY=%d/tls.key
EOF
  put 0644 "$WORK/tls-key.conf" "$UNITDIR/$UNIT.d/tls-key.conf"
fi
((CHANGED)) && UNIT_CHANGED=1
CHANGED=$((before | CHANGED))

if ((UNIT_CHANGED)); then sys systemctl daemon-reload; fi
sys systemctl enable "$UNIT"
if ((START)); then
  if ((UNIT_CHANGED || PROGRAM_CHANGED)) || ((CONFIG_CHANGED && !RELOAD_ONLY)); then
    sys systemctl restart "$UNIT"
  elif ((CONFIG_CHANGED)); then
    # Only a rotated TLS key/certificate/CA: SIGHUP (ExecReload), no restart; a unit that is
    # not running yet is started.
    sys systemctl reload-or-restart "$UNIT"
  else
    sys systemctl start "$UNIT"
  fi
fi
if ((CHANGED)); then say "done: $UNIT installed (journalctl -u $UNIT -f to follow it)"; else say "done: nothing changed"; fi
