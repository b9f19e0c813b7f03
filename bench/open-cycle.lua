-- wrk script: Tessera's open cycle. Each connection alternates POST …/open (answered
-- {"id": …}) and GET …/open/{id} (the session's values), so every cycle is two requests:
-- one evaluation with its secrets decrypted, one read of the sealed session, each audited.
-- Set by bench/open-vs-openbao.sh: TESSERA_TOKEN, TESSERA_ENV_PATH (org/project/env).

local token = os.getenv("TESSERA_TOKEN")
local path = "/api/esc/environments/" .. os.getenv("TESSERA_ENV_PATH")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  pending = {}   -- session ids waiting to be read, by this thread's connections
  opens, reads, failures = 0, 0, 0
  wrk.headers["Authorization"] = "token " .. token
  wrk.headers["Content-Type"] = "application/json"
  last = nil
end

function request()
  local id = table.remove(pending)
  if id then
    last = "read"
    return wrk.format("GET", path .. "/open/" .. id, nil, nil)
  end
  last = "open"
  return wrk.format("POST", path .. "/open", nil, "")
end

function response(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
    return
  end
  local id = body:match('"id"%s*:%s*"([^"]+)"')
  if id then
    opens = opens + 1
    table.insert(pending, id)
  else
    reads = reads + 1
  end
end

function done(summary, latency, requests)
  local o, r, f = 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("opens")
    r = r + t:get("reads")
    f = f + t:get("failures")
  end
  local secs = summary.duration / 1e6
  io.write(string.format("CYCLES opens=%d reads=%d failures=%d opens_per_s=%.0f reads_per_s=%.0f\n",
    o, r, f, o / secs, r / secs))
end
