# shellcheck shell=bash
# Scenario R (sourced by run.sh before `finish`): `coffer run` against a fresh dev
# server, with the secret written by the real `bao` first. Also runs against a real
# OpenBao (COMPAT_TARGET=openbao), which checks that `coffer run` speaks plain Vault.
# Needs: start_dev, stop_server, run, rbao, jget, expect_* from run.sh; $COFFER_BIN.

section "scenario R: coffer run against a fresh $TARGET dev server, secrets written by bao"
if [ ! -x "$COFFER_BIN" ]; then
    echo "# scenario R skipped: $COFFER_BIN is not built (cargo build -p coffer-client --bin coffer)"
else
    start_dev || die "scenario R dev server did not start"
    R_PID="$SRV_PID"
    ADDR="$SRV_ADDR"
    TOKEN="$ROOT_TOKEN"
    echo "# scenario R server at $ADDR (pid $R_PID)"
    R_PASS="run-pass-$RANDOM$RANDOM"
    R_TOKEN_FILE="$WORK/run-no-token-file"

    # crun ARGS... — coffer against $ADDR with $TOKEN (COFFER_* names), no token file.
    crun() { run env HOME="$WORK/home" COFFER_ADDR="$ADDR" COFFER_TOKEN="$TOKEN" COFFER_TOKEN_FILE="$R_TOKEN_FILE" "$COFFER_BIN" "$@"; }

    rbao kv put secret/app/db "password=$R_PASS" db-user=app port=5432
    expect_cmd_ok "coffer run: bao kv put secret/app/db"

    crun run --secret secret/app/db -- sh -c "test \"\$PASSWORD\" = '$R_PASS' && test \"\$DB_USER\" = app && test \"\$PORT\" = 5432"
    expect_rc "coffer run: the fields of the secret bao wrote are in the child's environment" 0
    crun run --secret secret/app/db -- sh -c 'exit 9'
    expect_rc "coffer run: the child's exit code is passed through" 9
    crun run -v --prefix APP_ --secret secret/app/db -- sh -c 'test -n "$APP_PASSWORD" && test -z "$PASSWORD"'
    expect_rc "coffer run --prefix APP_: APP_PASSWORD set, PASSWORD not" 0
    expect_contains "coffer run -v: names the variables it sets" "$ERR" "APP_PASSWORD"
    expect_not_contains "coffer run -v: never prints a value" "$OUT$ERR" "$R_PASS"

    run env HOME="$WORK/home" VAULT_ADDR="$ADDR" VAULT_TOKEN="$TOKEN" COFFER_TOKEN_FILE="$R_TOKEN_FILE" \
        "$COFFER_BIN" run --secret secret/app/db -- sh -c "test \"\$PASSWORD\" = '$R_PASS'"
    expect_rc "coffer run with bao's VAULT_ADDR/VAULT_TOKEN" 0

    # A token bao created with a policy that reads secret/app/* only.
    rbao policy write run-app-read - <<<'path "secret/data/app/*" { capabilities = ["read"] }'
    expect_cmd_ok "coffer run: bao policy write run-app-read"
    rbao token create -format=json -policy=run-app-read -ttl=10m
    R_APP_TOKEN="$(jget 'd["auth"]["client_token"]')"
    rbao kv put secret/ops/x "key=$R_PASS-ops"
    ROOT_SAVED="$TOKEN"
    TOKEN="$R_APP_TOKEN"
    crun run --secret secret/app/db -- sh -c "test \"\$PASSWORD\" = '$R_PASS'"
    expect_rc "coffer run with a bao-created read-only token" 0
    crun run --secret secret/ops/x -- true
    expect_cmd_fails "coffer run: a secret the token may not read exits 2 with the server's reason" 2 "permission denied"
    TOKEN="bogus-token-$RANDOM"
    crun run --secret secret/app/db -- true
    expect_cmd_fails "coffer run: a bad token exits 2 before the command runs" 2 "403"
    TOKEN="$ROOT_SAVED"

    printf 'user={{ DB_USER }}\npass={{PASSWORD}}\n' >"$WORK/run-app.tpl"
    crun run --secret secret/app/db --template "$WORK/run-app.tpl:$WORK/run-app.conf" -- \
        sh -c "test \"\$(cat '$WORK/run-app.conf')\" = \"\$(printf 'user=app\\npass=$R_PASS')\""
    expect_rc "coffer run --template: the file is rendered from the bao-written secret before the command" 0
    expect_eq "coffer run --template: the rendered file is mode 600" "$(stat -c %a "$WORK/run-app.conf" 2>/dev/null)" "600"

    rbao kv put secret/app/other db_user=someone
    crun run --secret secret/app/db --secret secret/app/other -- true
    expect_cmd_fails "coffer run: two fields giving DB_USER are refused, both named" 1 'secret/app/other field "db_user"'
    expect_not_contains "coffer run: the collision message shows no value" "$ERR" "someone"

    # SIGTERM to coffer run reaches the child: its trap writes a file and sets the code.
    rm -f "$WORK/run-ready" "$WORK/run-term"
    env HOME="$WORK/home" COFFER_ADDR="$ADDR" COFFER_TOKEN="$TOKEN" COFFER_TOKEN_FILE="$R_TOKEN_FILE" \
        "$COFFER_BIN" run --secret secret/app/db -- sh -c \
        "trap 'echo term > $WORK/run-term; exit 4' TERM; touch $WORK/run-ready; while :; do sleep 0.1; done" \
        >"$WORK/run-term.out" 2>"$WORK/run-term.err" &
    R_RUN_PID=$!
    PIDS+=("$R_RUN_PID")
    for _ in $(seq 1 100); do
        [ -f "$WORK/run-ready" ] && break
        sleep 0.1
    done
    kill -TERM "$R_RUN_PID" 2>/dev/null || true
    set +e
    timeout 20 tail --pid="$R_RUN_PID" -f /dev/null
    wait "$R_RUN_PID"
    R_RC=$?
    set -e
    expect_eq "coffer run: SIGTERM reaches the child (its trap ran, its exit code returned)" \
        "$(cat "$WORK/run-term" 2>/dev/null || echo none)/$R_RC" "term/4"

    stop_server "$R_PID"
fi
