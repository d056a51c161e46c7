#!/usr/bin/env node
// Compatibility checks for Coffer driven by the node-vault client library, run by
// tests/compat/run.sh against a dev server (cofferd, or a real OpenBao for the
// reference run). node-vault is installed from the npm registry outside the
// repository (run.sh: ~/.cache/coffer-node-vault, pinned by package-lock.json
// beside this file) and found through NODE_PATH.
//
//   node node_vault_compat.js --addr URL --token ROOT --target cofferd|openbao \
//       [--user NAME] [--mfa-method-id ID] [--failed-names FILE]
//
// Journeys: KV v2 (write, read, metadata, list, delete), tokens (create,
// lookup-self, renew, revoke), ACL policies (write, read, list, delete), and
// userpass with the second factor (create and read a user, enrol a TOTP factor
// through the API, log in with password + code: in one step with the X-Vault-MFA
// header, which node-vault passes through requestOptions.headers, and in two
// with sys/mfa/validate through node-vault's generic write). node-vault's
// userpassLogin sends only the fields its schema lists (password), so a code in
// the body would be dropped: the header is the way.
//
// One line per check: "ok  - node-vault: NAME" or "FAIL - node-vault: NAME: detail",
// then "node-vault totals: N passed, M failed". Exit status 0 when all passed.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const nodeVault = require('node-vault');

const args = {
    addr: '',
    token: '',
    target: 'cofferd',
    user: 'node-vault-user',
    mfaMethodId: '',
    failedNames: '',
};
for (let i = 2; i < process.argv.length; i += 2) {
    const v = process.argv[i + 1] || '';
    switch (process.argv[i]) {
        case '--addr': args.addr = v; break;
        case '--token': args.token = v; break;
        case '--target': args.target = v; break;
        case '--user': args.user = v; break;
        case '--mfa-method-id': args.mfaMethodId = v; break;
        case '--failed-names': args.failedNames = v; break;
        default:
            console.error(`unknown argument ${process.argv[i]}`);
            process.exit(64);
    }
}
if (!args.addr || !args.token) {
    console.error('--addr and --token are required');
    process.exit(64);
}

let passed = 0;
const failed = [];
const short = (x) => {
    let s;
    try { s = typeof x === 'string' ? x : JSON.stringify(x); } catch (_e) { s = String(x); }
    return (s === undefined ? 'undefined' : s).replace(/\s+/g, ' ').slice(0, 400);
};
function ok(name) {
    passed += 1;
    console.log(`ok  - node-vault: ${name}`);
}
function fail(name, detail) {
    failed.push(`node-vault: ${name}`);
    console.log(`FAIL - node-vault: ${name}: ${short(detail)}`);
}
// JSON with object keys sorted, so that equality ignores key order.
function canon(x) {
    if (Array.isArray(x)) return `[${x.map(canon).join(',')}]`;
    if (x && typeof x === 'object') {
        return `{${Object.keys(x).sort().map((k) => `${JSON.stringify(k)}:${canon(x[k])}`).join(',')}}`;
    }
    return JSON.stringify(x);
}
function eq(name, got, want) {
    if (canon(got) === canon(want)) ok(name);
    else fail(name, `got ${short(got)}, expected ${short(want)}`);
}
// A call that must succeed; returns its answer (undefined on failure).
async function call(name, promise) {
    try {
        const r = await promise;
        ok(name);
        return r;
    } catch (e) {
        fail(name, `error: ${e.message} ${e.response ? short(e.response.body) : ''}`);
        return undefined;
    }
}
// A call that must fail with this HTTP status.
async function refused(name, promise, status) {
    try {
        const r = await promise;
        fail(name, `succeeded: ${short(r)}, expected HTTP ${status}`);
    } catch (e) {
        const got = e.response && e.response.statusCode;
        if (got === status) ok(name);
        else fail(name, `got ${got} (${e.message}), expected HTTP ${status}`);
    }
}
const vault = (token) => nodeVault({ apiVersion: 'v1', endpoint: args.addr, token: token || undefined });

// Every answer must be the envelope every library decodes.
function envelopeOk(body) {
    return body && typeof body.request_id === 'string' && typeof body.lease_id === 'string'
        && typeof body.renewable === 'boolean' && Number.isInteger(body.lease_duration)
        && 'data' in body && 'wrap_info' in body && 'warnings' in body && 'auth' in body;
}

async function kv(root) {
    const w = await call('write secret/data/node/app', root.write('secret/data/node/app', { data: { user: 'app', pass: 'n0de-1' } }));
    eq('write -> data.version 1, and the whole envelope', [w && w.data.version, envelopeOk(w)], [1, true]);
    const r = await call('read secret/data/node/app', root.read('secret/data/node/app'));
    eq('read -> data.data as written, data.metadata.version 1', r && [r.data.data, r.data.metadata.version], [{ user: 'app', pass: 'n0de-1' }, 1]);
    await call('write again', root.write('secret/data/node/app', { data: { user: 'app', pass: 'n0de-2' } }));
    const m = await call('read secret/metadata/node/app', root.read('secret/metadata/node/app'));
    eq('metadata: current_version 2, versions 1 and 2', m && [m.data.current_version, Object.keys(m.data.versions).sort()], [2, ['1', '2']]);
    const l = await call('list secret/metadata/node', root.list('secret/metadata/node'));
    eq('list -> keys [app]', l && l.data.keys, ['app']);
    await call('delete secret/data/node/app (latest version)', root.delete('secret/data/node/app'));
    await refused('read after delete -> 404', root.read('secret/data/node/app'), 404);
    await call('delete secret/metadata/node/app', root.delete('secret/metadata/node/app'));
    await refused('list after the metadata delete -> 404', root.list('secret/metadata/node'), 404);
}

async function tokens() {
    // tokenCreate is a "token source": the client switches to the new token.
    const c = vault(args.token);
    const t = await call('tokenCreate (policies [default], ttl 1h)', c.tokenCreate({ policies: ['default'], ttl: '1h' }));
    if (!t) return;
    eq('tokenCreate: auth.lease_duration 3600, renewable, policies [default]',
        [t.auth.lease_duration, t.auth.renewable, t.auth.policies], [3600, true, ['default']]);
    eq('tokenCreate: the client now holds the new token', c.token, t.auth.client_token);
    const l = await call('tokenLookupSelf', c.tokenLookupSelf());
    eq('tokenLookupSelf: the same accessor, policies [default], 3500 < ttl <= 3600',
        l && [l.data.accessor === t.auth.accessor, l.data.policies, l.data.ttl > 3500 && l.data.ttl <= 3600], [true, ['default'], true]);
    const n = await call('tokenRenewSelf increment 2h', c.tokenRenewSelf({ increment: '2h' }));
    eq('tokenRenewSelf -> auth.lease_duration 7200', n && n.auth.lease_duration, 7200);
    await call('tokenRevoke (as root)', vault(args.token).tokenRevoke({ token: t.auth.client_token }));
    await refused('tokenLookupSelf with the revoked token -> 403', c.tokenLookupSelf(), 403);
}

const POLICY = 'path "secret/data/node/*" {\n  capabilities = ["read"]\n}\n';

async function policies(root) {
    await call('addPolicy node-read', root.addPolicy({ name: 'node-read', rules: POLICY }));
    const p = await call('getPolicy node-read', root.getPolicy({ name: 'node-read' }));
    eq('getPolicy: rules as written', p && [p.name, p.rules], ['node-read', POLICY]);
    const l = await call('policies', root.policies());
    eq('policies: node-read and default listed', l && [l.policies.includes('node-read'), l.policies.includes('default')], [true, true]);
    await call('removePolicy node-read', root.removePolicy({ name: 'node-read' }));
    await refused('getPolicy after removePolicy -> 404', root.getPolicy({ name: 'node-read' }), 404);
}

// ---- userpass + TOTP -------------------------------------------------------------

function base32(s) {
    const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    let bits = 0; let n = 0; const out = [];
    for (const ch of s.replace(/=+$/, '').toUpperCase()) {
        const v = abc.indexOf(ch);
        if (v < 0) throw new Error('bad base32');
        bits = (bits << 5) | v; n += 5;
        if (n >= 8) { n -= 8; out.push((bits >> n) & 0xff); bits &= (1 << n) - 1; }
    }
    return Buffer.from(out);
}
// TOTP codes (RFC 6238), computed here, never by the server: each time step used
// once and in order, within the server's one step of skew (waiting when needed).
class Totp {
    constructor(url) {
        this.key = base32(new URL(url).searchParams.get('secret'));
        this.last = 0;
    }
    codeAt(step) {
        const msg = Buffer.alloc(8);
        msg.writeBigUInt64BE(BigInt(step));
        const d = crypto.createHmac('sha1', this.key).update(msg).digest();
        const off = d[19] & 0x0f;
        return String((d.readUInt32BE(off) & 0x7fffffff) % 1000000).padStart(6, '0');
    }
    async next() {
        for (;;) {
            const now = Math.floor(Date.now() / 1000);
            const cur = Math.floor(now / 30); const left = 30 - (now % 30);
            const step = Math.max(this.last + 1, left >= 6 ? cur - 1 : cur);
            if (step <= cur + 1) { this.last = step; return this.codeAt(step); }
            await new Promise((res) => setTimeout(res, left * 1000));
        }
    }
}

async function userpass(root) {
    const user = args.user;
    const firstPw = 'the first password, from the admin';
    const pw = "node-vault user's own password";
    await call('write auth/userpass/users/<user> {password, token_policies, token_ttl, token_period 0}',
        root.write(`auth/userpass/users/${user}`, {
            password: args.target === 'cofferd' ? firstPw : pw,
            token_policies: 'read-only', token_ttl: '1h', token_max_ttl: '4h',
        }));
    const u = await call('read auth/userpass/users/<user>', root.read(`auth/userpass/users/${user}`));
    if (u) {
        const want = {
            token_bound_cidrs: [], token_explicit_max_ttl: 0, token_max_ttl: 14400, token_no_default_policy: false,
            token_num_uses: 0, token_period: 0, token_policies: ['read-only'], token_ttl: 3600, token_type: 'default',
        };
        const got = {};
        for (const k of Object.keys(want)) got[k] = u.data[k];
        eq('read user: every token parameter, in Vault\'s types', got, want);
    }
    const l = await call('list auth/userpass/users', root.list('auth/userpass/users'));
    eq('list users has the user', l && l.data.keys.includes(user), true);

    // Enrolment through the API.
    let methodId = args.mfaMethodId;
    let url;
    let enrollmentToken;
    const anon = vault('');
    if (args.target === 'cofferd') {
        const e = await call('(coffer setup) users/<user>/enrollment-token', root.write(`auth/userpass/users/${user}/enrollment-token`, {}));
        enrollmentToken = e && e.data.enrollment_token;
        const en = await call('(coffer setup) totp/enroll/<user> (no token)', anon.write(`auth/userpass/totp/enroll/${user}`, {
            enrollment_token: enrollmentToken, password: firstPw, new_password: pw,
        }));
        methodId = en && en.data.method_id;
        url = en && en.data.url;
    } else {
        const auths = await root.read('sys/auth');
        const accessor = auths.data['userpass/'].accessor;
        const ent = await root.write('identity/entity', { name: user });
        await call('(openbao setup) identity/entity-alias', root.write('identity/entity-alias', {
            name: user, canonical_id: ent.data.id, mount_accessor: accessor,
        }));
        const g = await root.write('identity/mfa/method/totp/admin-generate', { method_id: methodId, entity_id: ent.data.id });
        url = g && g.data.url;
    }
    if (!url || !url.startsWith('otpauth://')) {
        fail('userpass+mfa: a TOTP factor was enrolled', `no otpauth URL (${url})`);
        return;
    }
    const totp = new Totp(url);
    if (args.target === 'cofferd') {
        await call('(coffer setup) totp/confirm/<user> with a code', anon.write(`auth/userpass/totp/confirm/${user}`, {
            enrollment_token: enrollmentToken, password: pw, code: await totp.next(),
        }));
    }

    // The password alone: a pending MFA request, no token.
    const c1 = vault('');
    const first = await call('userpassLogin (password only)', c1.userpassLogin({ username: user, password: pw }));
    const reqId = first && first.auth && first.auth.mfa_requirement && first.auth.mfa_requirement.mfa_request_id;
    eq('... auth.client_token is empty, auth.mfa_requirement.mfa_request_id is set, the client took no token',
        first && [first.auth.client_token, typeof reqId, c1.token], ['', 'string', undefined]);
    const constraints = first && first.auth.mfa_requirement ? first.auth.mfa_requirement.mfa_constraints : {};
    const constraintId = (Object.values(constraints || {})[0] || { any: [{}] }).any[0].id;
    eq('... its constraint names the TOTP method', constraintId, methodId);

    // Two steps: sys/mfa/validate through node-vault's generic write.
    const v = await call('write sys/mfa/validate {mfa_request_id, mfa_payload}', c1.write('sys/mfa/validate', {
        mfa_request_id: reqId, mfa_payload: { [constraintId]: [await totp.next()] },
    }));
    eq('... a token with the user\'s policies and token_ttl', v && [v.auth.client_token.length > 0, [...v.auth.token_policies].sort(), v.auth.lease_duration],
        [true, ['default', 'read-only'], 3600]);

    // One step: X-Vault-MFA through requestOptions.headers.
    const c2 = vault('');
    const one = await call('userpassLogin with requestOptions.headers X-Vault-MFA: <method id>:<code>', c2.userpassLogin({
        username: user, password: pw, requestOptions: { headers: { 'X-Vault-MFA': `${methodId}:${await totp.next()}` } },
    }));
    eq('... a token, which the client now holds', one && [one.auth.client_token.length > 0, c2.token === one.auth.client_token], [true, true]);
    if (one) {
        const me = await call('... tokenLookupSelf with it', c2.tokenLookupSelf());
        eq('... meta.username is the user', me && me.data.meta && me.data.meta.username, user);
    }
    await call('delete auth/userpass/users/<user>', root.delete(`auth/userpass/users/${user}`));
}

(async () => {
    const root = vault(args.token);
    for (const [name, journey] of [['kv', () => kv(root)], ['tokens', tokens], ['policies', () => policies(root)], ['userpass', () => userpass(root)]]) {
        try {
            await journey();
        } catch (e) {
            fail(`${name}: the journey ran to its end`, `threw ${e.message} ${e.response ? short(e.response.body) : ''}`);
        }
    }
    console.log(`node-vault totals: ${passed} passed, ${failed.length} failed`);
    if (args.failedNames) fs.writeFileSync(args.failedNames, failed.map((n) => `${n}\n`).join(''));
    process.exit(failed.length === 0 ? 0 : 1);
})();
