-- wrk script for kvctl: GET or PUT of keys drawn uniformly from a key space.
-- Environment: KV_MODE=get|put|mixed (mixed: KV_READ_PERCENT reads),
-- KV_KEYS (10000), KV_KEY_SIZE (16), KV_VALUE_SIZE (100).
local mode = os.getenv("KV_MODE") or "get"
local keys = tonumber(os.getenv("KV_KEYS") or "10000")
local key_size = tonumber(os.getenv("KV_KEY_SIZE") or "16")
local value_size = tonumber(os.getenv("KV_VALUE_SIZE") or "100")
local read_percent = tonumber(os.getenv("KV_READ_PERCENT") or "90")
local value = string.rep("v", value_size)
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
    return wrk.format("PUT", path, nil, value)
  end
  return wrk.format("GET", path)
end
