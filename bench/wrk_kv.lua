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
local value_tail = string.rep("v", math.max(value_size - 16, 0))
local random, format = math.random, string.format
local counter = 0
local gets, put_heads = {}, {}

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  local host = wrk.headers["Host"] or wrk.host
  for i = 0, keys - 1 do
    -- The names kvctl bench gives (lib/bench/key_chooser.cpp), so the keys
    -- its fill wrote are the ones read here: "k" and the index, zero-padded.
    local path = "/v1/kv/k" .. format("%0" .. (key_size - 1) .. "d", i)
    gets[i] = "GET " .. path .. " HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
    put_heads[i] = "PUT " .. path .. " HTTP/1.1\r\nHost: " .. host ..
                   "\r\nContent-Length: " .. value_size .. "\r\n\r\n"
  end
end

function request()
  local i = random(0, keys - 1)
  if mode == "put" or (mode == "mixed" and random(1, 100) > read_percent) then
    -- Every value differs: kvctl writes nothing for a PUT of the value a
    -- key already holds, and that would measure no-ops, not durable writes.
    counter = counter + 1
    local stamp = format("%08x%08x", random(0, 0x7fffffff), counter % 0x7fffffff)
    return put_heads[i] .. (stamp .. value_tail):sub(1, value_size)
  end
  return gets[i]
end
