-- wrk script for the benchmark: POSTs one fixed body and prints one JSON line ("WRK_JSON {...}") at the end.
--   BENCH_BODY      path of the request body (read once)
--   BENCH_HEADERS   extra headers, "Name: value|Name: value"
--   BENCH_DELAY_MS  if > 0, each connection waits this long before each request (fixed-rate mode:
--                   rate ~= connections * 1000 / (delay + latency))
-- The request is pre-formatted by wrk (no Lua per request) unless BENCH_DELAY_MS is set.

local body_file = os.getenv("BENCH_BODY")
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0
local headers = os.getenv("BENCH_HEADERS") or ""

wrk.method = "POST"
local f = assert(io.open(body_file, "rb"))
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
for item in headers:gmatch("[^|]+") do
  local k, v = item:match("^%s*([^:]+):%s*(.-)%s*$")
  if k then wrk.headers[k] = v end
end

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"duration_us":%d,"requests":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"min":%d,"mean":%.2f,"stdev":%.2f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max))
end
