-- GET of the URL's path. Sends X-Vault-Token when BENCH_TOKEN is set (KV read,
-- token lookup-self); without it the request carries no token (sys/health).
dofile((os.getenv("BENCH_LUA_DIR") or "bench/wrk") .. "/report.lua")

wrk.method = "GET"

function init(args)
  local token = os.getenv("BENCH_TOKEN") or ""
  if token ~= "" then
    wrk.headers["X-Vault-Token"] = token
  end
end
