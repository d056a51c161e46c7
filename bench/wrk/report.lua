-- Shared by read.lua and write.lua (loaded with dofile): counts every answer
-- that is not 2xx, by status code, and prints one machine-readable line at the
-- end. Socket errors (connect/read/write/timeout) are wrk's own counters and are
-- reported separately: a run with errors must show them.

local all_threads = {}

function setup(thread)
  thread:set("thread_no", #all_threads)
  table.insert(all_threads, thread)
end

bad_total = 0
bad_by_code = {}

function response(status, headers, body)
  if status < 200 or status >= 300 then
    bad_total = bad_total + 1
    bad_by_code[status] = (bad_by_code[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local bad, codes = 0, {}
  for _, t in ipairs(all_threads) do
    bad = bad + (t:get("bad_total") or 0)
    for code, n in pairs(t:get("bad_by_code") or {}) do
      codes[code] = (codes[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(codes) do parts[#parts + 1] = tostring(code) .. "x" .. n end
  table.sort(parts)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCHRESULT requests=%d seconds=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d codes=%s sockerr=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    bad, (#parts > 0) and table.concat(parts, ",") or "-",
    e.connect + e.read + e.write + e.timeout))
end
