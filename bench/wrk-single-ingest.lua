-- Single-record ingest for wrk (bench/http-ingest.ts with BENCH_CLIENT=wrk).
-- Each request carries the next record of a pool spread over WRK_AGENTS agents, built like `record()`
-- in http-ingest.ts. With WRK_RATE set, requests are paced to that many per second in all (per thread:
-- WRK_RATE / threads), evenly spaced: latency is then measured at a known load, not at saturation.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } immune_timespec;
  int clock_gettime(int clk_id, immune_timespec *tp);
]]
local ts = ffi.new("immune_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local agents = tonumber(os.getenv("WRK_AGENTS") or "10000")
local key = os.getenv("WRK_KEY") or ""
local stamp = os.getenv("WRK_NOW")
local rate = tonumber(os.getenv("WRK_RATE") or "0")
local pool = {}
local k = 0
local threads = 0
local next_at = nil
local interval = nil

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  local base = (id or 0) * 1000003
  for j = 0, 8191 do
    local a = (base + j) % agents
    -- Every value is a function of the agent, as in record(): the load stays healthy.
    local body = string.format('{"agent_id":"bench-%d","agent_type":"Research","timestamp":%s,"latency_ms":%d,"input_tokens":%d,"output_tokens":%d,"cost":0.0031,"tool_calls":%d,"retries":0,"success":true,"model":"GPT-5","prompt_hash":"p1"}',
      a, stamp, 250 + (a * 31) % 100, 700 + (a * 7919) % 200, 350 + (a * 13) % 80, 2 + a % 3)
    pool[j + 1] = wrk.format("POST", nil, { ["content-type"] = "application/json", ["x-api-key"] = key }, body)
  end
  if rate > 0 then interval = 1000 / (rate / (tonumber(os.getenv("WRK_THREADS") or "1"))) end
end

-- Called before each request: the next free slot of the schedule (a connection that is free early waits for it).
function delay()
  if not interval then return 0 end
  local t = now_ms()
  if next_at == nil or next_at < t - 1000 then next_at = t end
  local wait = next_at - t
  next_at = next_at + interval
  if wait <= 0 then return 0 end
  return wait
end

function request()
  k = k % #pool + 1
  return pool[k]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"seconds":%f,"p50_us":%d,"p99_us":%d,"max_us":%d,"errors":%d,"non2xx":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99), latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
