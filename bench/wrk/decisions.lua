-- wrk script for `npm run bench -- stack`: POST /v1/decisions, each request with its own
-- idempotency key, rotating over WRK_ACCOUNTS accounts "bench-<n>" (default 64).
-- Environment: SPILLWAY_BENCH_KEY (a decide-scoped API key), WRK_KEY_PREFIX (unique per run).
-- done() prints one line "WRK_JSON {...}" with counts and latency percentiles in microseconds.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

local counter = 0
local accounts, prefix, headers

function init(args)
  accounts = tonumber(os.getenv("WRK_ACCOUNTS") or "64")
  prefix = (os.getenv("WRK_KEY_PREFIX") or "wrk") .. "-" .. thread_id
  headers = { ["content-type"] = "application/json", ["authorization"] = "Bearer " .. os.getenv("SPILLWAY_BENCH_KEY") }
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"account_id":"bench-%d","feature":"bench.task","quantity":1,"idempotency_key":"%s-%d","allow_partial":true}',
    counter % accounts, prefix, counter)
  return wrk.format("POST", "/v1/decisions", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
