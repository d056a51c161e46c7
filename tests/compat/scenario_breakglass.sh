# shellcheck shell=bash
# Scenario X (sourced by run.sh before `finish`; cofferd only, OpenBao has no
# break-glass): emergency access driven by the real `bao` CLI, as an on-call
# engineer with nothing but Vault tooling would. On a dev server of its own: two
# people with password + TOTP (alice, developer; bob, approver), alice asks, bob
# approves with a fresh code (`bao write ... totp=`), alice fetches the token once,
# uses it for an admin read her own token cannot do, cannot touch audit devices
# with it, and revokes it. Codes come from totp.py (RFC 6238, computed here).
# Needs from run.sh: start_dev, run, rbao, http, jget, expect_*, $PY, $HERE, $WORK.

if [ "$TARGET" != cofferd ]; then
    echo "# scenario X skipped: break-glass is Coffer's own (OpenBao has none)"
else
    section "scenario X: break-glass with the bao CLI on a fresh cofferd dev server"
    start_dev || die "scenario X dev server did not start"
    ADDR="$SRV_ADDR"
    TOKEN="$ROOT_TOKEN"
    B_ADMIN_PW="the admin's first password"
    B_PW="a person's own long password"
    declare -A B_URL=() B_LAST=() B_HOME=() B_MID=()

    # b_code USER — B_CODE: the next usable code of USER (may wait for a step).
    b_code() {
        local step code
        read -r step code < <("$PY" "$HERE/totp.py" next "${B_URL[$1]}" "${B_LAST[$1]}" || true) || true
        B_LAST[$1]="$step"
        B_CODE="$code"
    }
    # b_person USER POLICY — creates USER with POLICY, enrols their factor and logs
    # them in with `bao login` (token in their own HOME's token helper file).
    b_person() {
        local user="$1" policy="$2" enroll_token
        http POST "auth/userpass/users/$user" "{\"password\":\"$B_ADMIN_PW\",\"token_policies\":[\"$policy\"],\"metadata\":{\"team\":\"payments\"}}"
        expect_http "breakglass setup: create $user ($policy)" 204
        http POST "auth/userpass/users/$user/enrollment-token" '{}'
        enroll_token="$(jget 'd["data"]["enrollment_token"]' "$HBODY")"
        http POST "auth/userpass/totp/enroll/$user" "{\"enrollment_token\":\"$enroll_token\",\"password\":\"$B_ADMIN_PW\",\"new_password\":\"$B_PW\"}" ""
        expect_http "breakglass setup: $user enrols a factor" 200
        B_URL[$user]="$(jget 'd["data"]["url"]' "$HBODY")"
        B_MID[$user]="$(jget 'd["data"]["method_id"]' "$HBODY")"
        B_LAST[$user]=0
        B_HOME[$user]="$WORK/bg-$user"
        mkdir -p "${B_HOME[$user]}"
        b_code "$user"
        http POST "auth/userpass/totp/confirm/$user" "{\"enrollment_token\":\"$enroll_token\",\"password\":\"$B_PW\",\"code\":\"$B_CODE\"}" ""
        expect_http "breakglass setup: $user confirms the factor" 200
        b_code "$user"
        run env HOME="${B_HOME[$user]}" BAO_ADDR="$ADDR" VAULT_MFA="${B_MID[$user]}:$B_CODE" \
            "$BAO" login -method=userpass "username=$user" "password=$B_PW" </dev/null
        expect_cmd_ok "breakglass: VAULT_MFA=<method>:<code> bao login -method=userpass $user" "Success!"
    }
    # as USER ARGS... — the bao CLI with USER's stored token.
    as() {
        local user="$1"
        shift
        run env HOME="${B_HOME[$user]}" BAO_ADDR="$ADDR" "$BAO" "$@" </dev/null
    }

    http POST sys/auth/userpass '{"type":"userpass"}'
    expect_http "breakglass setup: enable userpass" 204
    rbao policy write breakglass-approver - <<<'path "sys/breakglass/approve" { capabilities = ["update"] }'
    expect_cmd_ok "breakglass: bao policy write breakglass-approver"
    rbao audit enable file "file_path=$WORK/bg-audit.log"
    expect_cmd_ok "breakglass setup: bao audit enable file (the report reads it)"
    b_person alice developer
    b_person bob breakglass-approver

    rbao write sys/breakglass/request reason="INC-7: the primary is down"
    expect_cmd_fails "breakglass: root may not ask (exit 2, 403: a person's MFA login)" 2 "second factor"
    as alice write -format=json sys/breakglass/request reason="INC-7: the primary is down" incident=INC-7 ttl=10m
    expect_cmd_ok "breakglass: alice bao write sys/breakglass/request reason=... ttl=10m"
    B_ID="$(jget 'd["data"]["id"]')"
    expect_eq "breakglass: ... pending, 600 s of emergency-admin" \
        "$(jget '[d["data"]["status"], d["data"]["ttl"], d["data"]["policies"]]')" '["pending",600,["emergency-admin"]]'
    as bob list -format=json sys/breakglass
    expect_eq "breakglass: bob bao list sys/breakglass shows the request" "$(jget 'd')" "[\"$B_ID\"]"
    as bob write "sys/breakglass/$B_ID/approve" comment=go
    expect_cmd_fails "breakglass: bob approving without a code is refused (403)" 2 "TOTP"
    as alice write -f "sys/breakglass/$B_ID/token"
    expect_cmd_fails "breakglass: no token before approval (400)" 2 "Code: 400"
    b_code bob
    as bob write -format=json "sys/breakglass/$B_ID/approve" "totp=$B_CODE" comment=go
    expect_cmd_ok "breakglass: bob bao write sys/breakglass/<id>/approve totp=<fresh code>"
    expect_eq "breakglass: ... approved by bob" \
        "$(jget '[d["data"]["status"], d["data"]["approvals"][0]["approver"]]')" '["approved","bob"]'
    as bob write "sys/breakglass/$B_ID/approve" "totp=$B_CODE"
    expect_cmd_fails "breakglass: an approved request is not approved again (400)" 2 "not pending"

    as alice write -f -format=json "sys/breakglass/$B_ID/token"
    expect_cmd_ok "breakglass: alice bao write -f sys/breakglass/<id>/token"
    B_TOKEN="$(jget 'd["auth"]["client_token"]')"
    expect_eq "breakglass: ... a non-renewable emergency-admin token carrying breakglass_id" \
        "$(jget '[d["auth"]["policies"], d["auth"]["renewable"], d["auth"]["metadata"]["breakglass_id"] == d["data"]["id"]]')" \
        '[["emergency-admin"],false,true]'
    as alice write -f "sys/breakglass/$B_ID/token"
    expect_cmd_fails "breakglass: a second fetch is refused (400)" 2 "already fetched"

    as alice policy read developer
    expect_cmd_fails "breakglass: alice's own token cannot read policies (403)" 2 "Code: 403"
    run env HOME="$WORK/home" BAO_ADDR="$ADDR" BAO_TOKEN="$B_TOKEN" "$BAO" policy read developer
    expect_cmd_ok "breakglass: bao policy read developer with the emergency token" "secret/data/teams"
    run env HOME="$WORK/home" BAO_ADDR="$ADDR" BAO_TOKEN="$B_TOKEN" "$BAO" audit disable file
    expect_cmd_fails "breakglass: bao audit disable with the emergency token is refused (403)" 2 "Code: 403"
    run env HOME="$WORK/home" BAO_ADDR="$ADDR" BAO_TOKEN="$B_TOKEN" "$BAO" token renew
    expect_cmd_fails "breakglass: bao token renew with the emergency token is refused (403)" 2 "Code: 403"

    as alice write -f -format=json "sys/breakglass/$B_ID/revoke"
    expect_eq "breakglass: alice bao write -f sys/breakglass/<id>/revoke -> revoked" "$(jget 'd["data"]["status"]')" "revoked"
    run env HOME="$WORK/home" BAO_ADDR="$ADDR" BAO_TOKEN="$B_TOKEN" "$BAO" policy read developer
    expect_cmd_fails "breakglass: the revoked emergency token is refused at once (403)" 2 "Code: 403"
    as alice read -format=json "sys/breakglass/$B_ID/report"
    expect_eq "breakglass: bao read sys/breakglass/<id>/report: the timeline names the use" \
        "$(jget '[e["path"] for e in d["data"]["timeline"] if e["event"] == "used" and not e["error"]][:1]')" \
        '["sys/policies/acl/developer"]'
fi
