-- wrk script for kvctl: GET or PUT of keys drawn uniformly from a key space.
-- Environment: KV_MODE=get|put|mixed (mixed: KV_READ_PERCENT reads),
-- KV_KEYS (10000), KV_KEY_SIZE (16), KV_VALUE_SIZE (100).
local mode = os.getenv("KV_MODE") or "get"
local keys = tonumber(os.getenv("KV_KEYS") or "10000")
local key_size = tonumber(os.getenv("KV_KEY_SIZE") or "16")
local value_size = tonumber(os.getenv("KV_VALUE_SIZE") or "100")
local read_percent = tonumber(os.getenv("KV_READ_PERCENT") or "90")
local value_tail = string.rep("v", math.max(value_size - 16, 0))
local counter = 0
local paths = {}

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  for i = 0, keys - 1 do
    local k = string.format("%0" .. key_size .. "d", i)
    paths[i] = "/v1/kv/" .. k
  end
end

function request()
  local path = paths[math.random(0, keys - 1)]
  local put = mode == "put" or (mode == "mixed" and math.random(1, 100) > read_percent)
  if put then
    -- Every value differs: kvctl writes nothing for a PUT of the value a
    -- key already holds, and that would measure no-ops, not durable writes.
    counter = counter + 1
    local stamp = string.format("%08x%08x", math.random(0, 0x7fffffff), counter % 0x7fffffff)
    return wrk.format("PUT", path, nil, (stamp .. value_tail):sub(1, value_size))
  end
  return wrk.format("GET", path)
end
