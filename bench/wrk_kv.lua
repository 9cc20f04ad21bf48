-- wrk script for kvctl: GET or PUT of keys drawn uniformly from a key space.
-- Environment: KV_MODE=get|put|mixed (mixed: KV_READ_PERCENT reads),
-- KV_KEYS (10000), KV_KEY_SIZE (16), KV_VALUE_SIZE (100).
--
-- Each request's head is built once per key in init(): wrk.format() per
-- request (a table, a string.format per header) cost wrk more CPU than
-- kvctl spent answering, on a 2-core machine where both share the cores.
local mode = os.getenv("KV_MODE") or "get"
local keys = tonumber(os.getenv("KV_KEYS") or "10000")
local key_size = tonumber(os.getenv("KV_KEY_SIZE") or "16")
local value_size = tonumber(os.getenv("KV_VALUE_SIZE") or "100")
local read_percent = tonumber(os.getenv("KV_READ_PERCENT") or "90")
local random, format = math.random, string.format
-- PUT: kvctl writes nothing for a PUT of the value a key already holds, so
-- a fixed value would measure no-ops, not durable writes. Each key has two
-- whole PUT requests per wrk thread, their values stamped with the thread's
-- number, a tag drawn per run (so a run after another on the same keys
-- writes too) and 1 or 2; a thread alternates them, so its next PUT of a
-- key always differs from what the key holds (its own last PUT or another
-- thread's). Built once, as the GETs are: building each PUT (a stamp, a
-- concatenation) cost wrk about 5% of the rate it could drive.
local gets, puts, last_put = {}, {{}, {}}, {}
local threads_set_up = 0

function setup(thread)
  threads_set_up = threads_set_up + 1
  thread:set("thread_number", threads_set_up)  -- a global in that thread's Lua state
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  local run_tag = random(0, 0xffffff)
  local host = wrk.headers["Host"] or wrk.host
  for i = 0, keys - 1 do
    -- The names kvctl bench gives (lib/bench/key_chooser.cpp), so the keys
    -- its fill wrote are the ones read here: "k" and the index, zero-padded.
    local path = "/v1/kv/k" .. format("%0" .. (key_size - 1) .. "d", i)
    gets[i] = "GET " .. path .. " HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
    for variant = 1, 2 do
      local value = (format("%02d%06x%d", thread_number or 0, run_tag, variant) .. string.rep("v", value_size)):sub(1, value_size)
      puts[variant][i] = "PUT " .. path .. " HTTP/1.1\r\nHost: " .. host ..
                         "\r\nContent-Length: " .. value_size .. "\r\n\r\n" .. value
    end
    last_put[i] = 2
  end
end

function request()
  local i = random(0, keys - 1)
  if mode == "put" or (mode == "mixed" and random(1, 100) > read_percent) then
    local variant = 3 - last_put[i]
    last_put[i] = variant
    return puts[variant][i]
  end
  return gets[i]
end
