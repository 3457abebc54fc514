#!/bin/sh
# Vigie — start Alertmanager with its secrets taken from the environment (.env + docker compose).
#
# Alertmanager reads secrets only from files (smtp_auth_password_file, credentials_file,
# api_url_file). This script writes each secret variable below to a file readable by this user
# only, removes the variable from the environment, then execs Alertmanager with the arguments
# it was given. It never prints a secret. POSIX sh: runs in the busybox-based official image.
#
#   VIGIE_SMTP_PASSWORD      -> $VIGIE_SECRETS_DIR/vigie_smtp_password
#   VIGIE_MATRIX_TOKEN       -> $VIGIE_SECRETS_DIR/vigie_matrix_token
#   VIGIE_SLACK_WEBHOOK_URL  -> $VIGIE_SECRETS_DIR/vigie_slack_webhook_url
#
# VIGIE_SECRETS_DIR defaults to /run/secrets (the paths used in alertmanager.yml); mount a
# tmpfs there so secrets never reach a disk. ALERTMANAGER_BIN defaults to /bin/alertmanager.
set -eu

dir="${VIGIE_SECRETS_DIR:-/run/secrets}"
umask 077
mkdir -p "$dir"

write_secret() {
    # $1: variable name (fixed names only, see below); $2: file name
    eval "value=\${$1:-}"
    if [ -n "$value" ]; then
        printf '%s' "$value" > "$dir/$2"
    fi
    value=""
    unset "$1"
}

write_secret VIGIE_SMTP_PASSWORD vigie_smtp_password
write_secret VIGIE_MATRIX_TOKEN vigie_matrix_token
write_secret VIGIE_SLACK_WEBHOOK_URL vigie_slack_webhook_url

exec "${ALERTMANAGER_BIN:-/bin/alertmanager}" "$@"
