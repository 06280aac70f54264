-- wrk script of the benchmark: each thread cycles through raw HTTP requests built (and, for
-- webhooks, signed) by bench/run.py, read from "<prefix>.<thread number>". Format of that file:
-- for each request, its length in bytes on a line, then exactly that many bytes.
--
-- Arguments after "--": <requests prefix> [<record prefix>]
-- With a record prefix, each thread writes one line per answer that carries a webhook receipt or
-- an error status to "<record prefix>.<thread number>": "<http status> <event_id|-> <status|code|->".
-- At the end it prints one line "BENCH_WRK {json}" with the counts and latency percentiles.

local counter = 0
local threads = {}

function setup(thread)
   thread:set("id", counter)
   table.insert(threads, thread)
   counter = counter + 1
end

local requests = {}
local count = 0
local index = 0
wrapped = 0
local record = nil

local function load(path)
   local file = assert(io.open(path, "rb"))
   local data = file:read("*a")
   file:close()
   local position = 1
   local size = #data
   while position <= size do
      local newline = string.find(data, "\n", position, true)
      if newline == nil then break end
      local length = tonumber(string.sub(data, position, newline - 1))
      requests[#requests + 1] = string.sub(data, newline + 1, newline + length)
      position = newline + length + 1
   end
   count = #requests
   assert(count > 0, "no requests in " .. path)
end

function init(args)
   load(args[1] .. "." .. id)
   if args[2] ~= nil then
      record = assert(io.open(args[2] .. "." .. id, "w"))
      record:setvbuf("line")
      response = function(status, headers, body)
         local event_id = string.match(body, '"event_id":%s*(%d+)')
         if event_id ~= nil then
            local state = string.match(body, '"status":%s*"([%a_]+)"') or "-"
            record:write(status, " ", event_id, " ", state, "\n")
         elseif status >= 300 then
            local code = string.match(body, '"code":%s*"([%w_]+)"') or "-"
            record:write(status, " - ", code, "\n")
         end
      end
   end
end

function request()
   index = index + 1
   if index > count then
      index = 1
      wrapped = wrapped + 1
   end
   return requests[index]
end

function done(summary, latency, requests_)
   local total_wrapped = 0
   for _, thread in ipairs(threads) do
      total_wrapped = total_wrapped + (thread:get("wrapped") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_WRK {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, "wrapped": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
      total_wrapped))
end
