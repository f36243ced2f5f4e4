-- wrk script shared by every run of benches/run.sh, configured through the environment:
--   BENCH_MODE     fixed (default): one request, the URL's path, BENCH_METHOD/BENCH_BODY;
--                  mint: POST the URL's path, `grant_type=client_credentials&job_id=N`, N cycling
--                  through BENCH_JOBS ("FIRST:LAST"), each thread starting at its own offset;
--                  bodies: POST the URL's path, one line of BENCH_BODIES per request, cycling;
--                  mixed: 10-request cycle, 7 introspections/decisions (BENCH_BODIES to
--                  /oauth/introspect and BENCH_BODIES2 to /api/v1/job_token/authorize, alternating),
--                  2 mints (BENCH_JOBS, with BENCH_AUTH_MINT), 1 GET /.well-known/jwks.json
--   BENCH_METHOD   HTTP method in fixed mode (default GET)
--   BENCH_BODY     request body in fixed mode; sets Content-Type when present
--   BENCH_TYPE     Content-Type of bodies (default application/x-www-form-urlencoded)
--   BENCH_TYPE2    Content-Type of BENCH_BODIES2 (default application/json)
--   BENCH_AUTH     value of the Authorization header, if any
--   BENCH_EXPECT   when set, every response must be a 200 whose body contains this string
--                  (plain text), else it counts as bad; "mixed" accepts any of the four answers
--                  below. Responses whose body has "access_token" are counted as mints (the
--                  durability check compares them with the database).
--   BENCH_OUT      file that done() writes key=value results to
--   BENCH_WRK_THREADS  wrk's -t, so that each thread starts at its own offset in the cycles
local mode = os.getenv("BENCH_MODE") or "fixed"
local expect = os.getenv("BENCH_EXPECT") or ""
local auth = os.getenv("BENCH_AUTH") or ""
local auth_mint = os.getenv("BENCH_AUTH_MINT") or ""
local form = "application/x-www-form-urlencoded"
local content_type = os.getenv("BENCH_TYPE") or ""
if content_type == "" then content_type = form end
local content_type2 = os.getenv("BENCH_TYPE2") or ""
if content_type2 == "" then content_type2 = "application/json" end

wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = content_type
end
if auth ~= "" then wrk.headers["Authorization"] = auth end

local threads = {}

-- wrk calls setup (here) and then init (in the new thread) one thread at a time, so the thread
-- count comes from the caller (BENCH_WRK_THREADS), not from counting setups.
function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

local function read_lines(path)
  local lines = {}
  if path and path ~= "" then
    for line in io.lines(path) do
      if line ~= "" then lines[#lines + 1] = line end
    end
  end
  return lines
end

local jobs_first, jobs_count, job_next = 0, 0, 0
local bodies, bodies2, body_next, body2_next = {}, {}, 1, 1
local cycle = 0

function init(args)
  local index = thread_index or 0
  local total = tonumber(os.getenv("BENCH_WRK_THREADS") or "") or 1
  if total < 1 then total = 1 end
  local range = os.getenv("BENCH_JOBS") or ""
  local first, last = string.match(range, "^(%d+):(%d+)$")
  if first then
    jobs_first = tonumber(first)
    jobs_count = tonumber(last) - jobs_first + 1
    job_next = math.floor(jobs_count * index / total)
  end
  bodies = read_lines(os.getenv("BENCH_BODIES"))
  bodies2 = read_lines(os.getenv("BENCH_BODIES2"))
  if #bodies > 0 then body_next = math.floor(#bodies * index / total) + 1 end
  if #bodies2 > 0 then body2_next = math.floor(#bodies2 * index / total) + 1 end
  cycle = index
end

local function mint_request()
  local id = jobs_first + job_next
  job_next = (job_next + 1) % jobs_count
  return wrk.format("POST", "/oauth/token", {
    ["Content-Type"] = form,
    ["Authorization"] = (auth_mint ~= "" and auth_mint) or auth,
  }, "grant_type=client_credentials&job_id=" .. id)
end

local function next_body()
  local b = bodies[body_next]
  body_next = body_next % #bodies + 1
  return b
end

local function next_body2()
  local b = bodies2[body2_next]
  body2_next = body2_next % #bodies2 + 1
  return b
end

if mode == "mint" then
  request = mint_request
elseif mode == "bodies" then
  request = function()
    return wrk.format("POST", nil, { ["Content-Type"] = content_type, ["Authorization"] = auth }, next_body())
  end
elseif mode == "mixed" then
  request = function()
    local slot = cycle % 10
    cycle = cycle + 1
    if slot < 7 then
      if slot % 2 == 0 then
        return wrk.format("POST", "/oauth/introspect", { ["Content-Type"] = form, ["Authorization"] = auth }, next_body())
      end
      return wrk.format("POST", "/api/v1/job_token/authorize",
        { ["Content-Type"] = content_type2, ["Authorization"] = auth }, next_body2())
    elseif slot < 9 then
      return mint_request()
    end
    return wrk.format("GET", "/.well-known/jwks.json", {}, nil)
  end
end

local find = string.find
ok, bad, minted, first_bad = 0, 0, 0, ""
if expect ~= "" then
  local accepted
  if expect == "mixed" then
    accepted = function(b)
      return find(b, '"access_token"', 1, true) or find(b, '"active":true', 1, true)
        or find(b, '"allowed":true', 1, true) or find(b, '"keys"', 1, true)
    end
  else
    accepted = function(b) return find(b, expect, 1, true) end
  end
  function response(status, headers, resp_body)
    local b = resp_body or ""
    if status == 200 and accepted(b) then
      ok = ok + 1
      if find(b, '"access_token"', 1, true) then minted = minted + 1 end
    else
      bad = bad + 1
      if first_bad == "" then
        first_bad = status .. " " .. string.sub(b, 1, 200)
      end
    end
  end
end

function done(summary, latency, requests)
  local out = os.getenv("BENCH_OUT")
  if not out or out == "" then return end
  local ok_total, bad_total, minted_total, first = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    ok_total = ok_total + (t:get("ok") or 0)
    bad_total = bad_total + (t:get("bad") or 0)
    minted_total = minted_total + (t:get("minted") or 0)
    local b = t:get("first_bad")
    if first == "" and b and b ~= "" then first = b end
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
  f:write(string.format("checked=%d\nok=%d\nbad=%d\nminted=%d\n", expect ~= "" and 1 or 0, ok_total, bad_total, minted_total))
  -- kept last and read verbatim
  f:write("first_bad=" .. string.gsub(first, "\n", " ") .. "\n")
  f:close()
end
