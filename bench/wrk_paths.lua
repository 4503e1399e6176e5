-- wrk script used by bench/authoring.py (the C load driver for the GET phases).
--
--   wrk -t2 -c24 -d8s -s bench/wrk_paths.lua http://127.0.0.1:PORT -- PATHS_FILE
--
-- Each request GETs a path picked at random from PATHS_FILE (one path per line, e.g.
-- /api/v1/articles/<id>); headers given with -H (Authorization) are sent with each.
-- Responses outside 2xx are counted by status. done() prints one line,
-- "WRK_JSON {...}", with the totals, wrk's socket errors, the non-2xx statuses and
-- latency percentiles in microseconds.

local threads = {}

function setup(thread)
   threads[#threads + 1] = thread
   thread:set("seed", #threads)
end

local reqs, n = {}, 0
statuses = {} -- global: done() reads each thread's copy with thread:get

function init(args)
   math.randomseed(os.time() * 100 + (seed or 0))
   for line in io.lines(args[1]) do
      if line ~= "" then
         n = n + 1
         reqs[n] = wrk.format("GET", line)
      end
   end
   assert(n > 0, "no paths in " .. tostring(args[1]))
end

function request()
   return reqs[math.random(n)]
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      statuses[status] = (statuses[status] or 0) + 1
   end
end

local PERCENTILES = { 1, 2, 5, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 95, 98, 99, 99.5, 99.9 }

function done(summary, latency, requests)
   local codes = {}
   for _, t in ipairs(threads) do
      for status, count in pairs(t:get("statuses")) do
         codes[status] = (codes[status] or 0) + count
      end
   end
   local status_parts = {}
   for status, count in pairs(codes) do
      status_parts[#status_parts + 1] = string.format('"%d": %d', status, count)
   end
   local pct_parts = {}
   if summary.requests > 0 then
      pct_parts[1] = string.format("[0, %d]", latency.min)
      for _, p in ipairs(PERCENTILES) do
         pct_parts[#pct_parts + 1] = string.format("[%g, %d]", p, latency:percentile(p))
      end
      pct_parts[#pct_parts + 1] = string.format("[100, %d]", latency.max)
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"duration_us": %d, "requests": %d, "bytes": %d, '
         .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
         .. '"statuses": {%s}, "latency_mean_us": %.1f, "latency_us": [%s]}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      table.concat(status_parts, ", "), latency.mean, table.concat(pct_parts, ", ")
   ))
end
