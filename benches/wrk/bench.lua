-- wrk script shared by every benchmark in benches/run.sh, configured through the environment:
--   BENCH_METHOD   HTTP method (default GET)
--   BENCH_BODY     request body; sets Content-Type when present
--   BENCH_TYPE     its Content-Type (default application/x-www-form-urlencoded)
--   BENCH_AUTH     value of the Authorization header, if any
--   BENCH_COUNT    "1" to count responses by status in Lua (exact success count; costs a
--                  little load-generator CPU, so only the mint run uses it)
--   BENCH_OUT      file that done() writes key=value results to
wrk.method = os.getenv("BENCH_METHOD") or "GET"

local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
  wrk.body = body
  local content_type = os.getenv("BENCH_TYPE")
  if not content_type or content_type == "" then content_type = "application/x-www-form-urlencoded" end
  wrk.headers["Content-Type"] = content_type
end

local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

if os.getenv("BENCH_COUNT") == "1" then
  ok, other, first_bad = 0, 0, ""
  function response(status, headers, resp_body)
    if status == 200 then
      ok = ok + 1
    else
      other = other + 1
      if first_bad == "" then
        first_bad = status .. " " .. string.sub(resp_body or "", 1, 200)
      end
    end
  end
end

function done(summary, latency, requests)
  local out = os.getenv("BENCH_OUT")
  if not out or out == "" then return end
  local ok_total, other_total, bad = 0, 0, ""
  local counted = os.getenv("BENCH_COUNT") == "1"
  if counted then
    for _, t in ipairs(threads) do
      ok_total = ok_total + (t:get("ok") or 0)
      other_total = other_total + (t:get("other") or 0)
      local b = t:get("first_bad")
      if bad == "" and b and b ~= "" then bad = b end
    end
  end
  local e = summary.errors
  local f = assert(io.open(out, "w"))
  f:write(string.format("requests=%d\n", summary.requests))
  f:write(string.format("duration_us=%d\n", summary.duration))
  f:write(string.format("rps=%.1f\n", summary.requests / (summary.duration / 1e6)))
  f:write(string.format("p50_us=%d\n", latency:percentile(50)))
  f:write(string.format("p90_us=%d\n", latency:percentile(90)))
  f:write(string.format("p99_us=%d\n", latency:percentile(99)))
  f:write(string.format("max_us=%d\n", latency.max))
  f:write(string.format("non2xx=%d\n", e.status))
  f:write(string.format("sock_connect=%d\nsock_read=%d\nsock_write=%d\nsock_timeout=%d\n",
    e.connect, e.read, e.write, e.timeout))
  if counted then
    f:write(string.format("ok=%d\nnot_ok=%d\n", ok_total, other_total))
    -- one line, no '=' inside the value would be safer, so keep it last and read it verbatim
    f:write("first_bad=" .. string.gsub(bad, "\n", " ") .. "\n")
  end
  f:close()
end
