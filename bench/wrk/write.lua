-- KV v2 write: POST <mount>/data/<prefix>-<n> with a JSON body whose values change
-- on every request (thread number, counter, time), so no two bodies are equal.
-- BENCH_KV_PATH is the data path without the key suffix, e.g. /v1/secret/data/bench-w
-- BENCH_WRITE_KEYS is how many distinct keys are cycled over (1 = one hot key);
-- BENCH_THREADS (wrk -t) makes the threads take turns over them.
dofile((os.getenv("BENCH_LUA_DIR") or "bench/wrk") .. "/report.lua")

wrk.method = "POST"

local base, nkeys, nthreads, counter, me

function init(args)
  wrk.headers["X-Vault-Token"] = os.getenv("BENCH_TOKEN") or ""
  wrk.headers["Content-Type"] = "application/json"
  base = os.getenv("BENCH_KV_PATH") or "/v1/secret/data/bench-w"
  nkeys = tonumber(os.getenv("BENCH_WRITE_KEYS") or "1000") or 1000
  if nkeys < 1 then nkeys = 1 end
  nthreads = tonumber(os.getenv("BENCH_THREADS") or "1") or 1
  counter = 0
  me = thread_no or 0
  math.randomseed(os.time() + me * 7919)
end

function request()
  counter = counter + 1
  local path = base
  if nkeys > 1 then
    path = string.format("%s-%d", base, (counter * nthreads + me) % nkeys)
  end
  local body = string.format(
    '{"data":{"username":"svc-bench-%d","password":"pw-%d-%d-%08x","host":"db%d.internal.example",' ..
    '"port":"5432","database":"orders","region":"eu-west-1","owner":"team-platform",' ..
    '"rotated":"%d","note":"coffer benchmark value %d/%d"}}',
    me, me, counter, math.random(0, 0x7fffffff), counter % 16, os.time(), me, counter)
  return wrk.format(nil, path, nil, body)
end
