-- wrk script for etcd's JSON gateway (v3): put or range of keys drawn
-- uniformly from a key space, the same shape as wrk_kv.lua; or txn: one
-- transaction of 3 puts (keys i, i+1, i+2, wrapped; no compares), the
-- shape of `kvctl bench --txn-ratio 1`.
-- Environment: ETCD_MODE=put|range|txn, KV_KEYS (10000), KV_VALUE_SIZE (100).
-- Whole requests are built once per key in init(), as in wrk_kv.lua, so
-- wrk's own cost per request is the same small one for both servers.
local mode = os.getenv("ETCD_MODE") or "range"
local keys = tonumber(os.getenv("KV_KEYS") or "10000")
local value_size = tonumber(os.getenv("KV_VALUE_SIZE") or "100")
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local requests = {}
-- put: each request's value starts with a fresh stamp (16 hex digits, which
-- are base64 characters: 12 bytes of value). kvctl writes nothing for a put
-- of the value a key already holds, so a fixed value would measure no-ops
-- there, not durable writes; etcd writes either way.
local put_heads, put_tail = {}, ""
local random, format = math.random, string.format
local counter = 0

local function base64(data)
  local out = {}
  for i = 1, #data, 3 do
    local a, b, c = data:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = 4 - (3 - (#data - i + 1 >= 3 and 3 or #data - i + 1))
    for j = 1, 4 do
      local index = math.floor(n / 2 ^ (6 * (4 - j))) % 64
      out[#out + 1] = j <= chars and alphabet:sub(index + 1, index + 1) or "="
    end
  end
  return table.concat(out)
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  local host = wrk.headers["Host"] or wrk.host
  local paths = {put = "/v3/kv/put", range = "/v3/kv/range", txn = "/v3/kv/txn"}
  local path = paths[mode]
  if path == nil then error("ETCD_MODE must be put, range or txn, not " .. mode) end
  local value = base64(string.rep("v", value_size))
  local function key_of(i) return base64(string.format("key:%012d", i % keys)) end
  for i = 0, keys - 1 do
    local key = key_of(i)
    local body
    if mode == "put" then
      local head = '{"key":"' .. key .. '","value":"'
      put_tail = base64(string.rep("v", math.max(value_size - 12, 1))) .. '"}'
      put_heads[i] = "POST " .. path .. " HTTP/1.1\r\nHost: " .. host ..
                     "\r\nContent-Type: application/json\r\nContent-Length: " .. (#head + 16 + #put_tail) ..
                     "\r\n\r\n" .. head
    elseif mode == "txn" then
      -- Measured against etcd only (bench/run.sh), which writes a new
      -- revision for every put, same value or not: the value need not differ.
      local puts = {}
      for j = 0, 2 do
        puts[#puts + 1] = '{"request_put":{"key":"' .. key_of(i + j) .. '","value":"' .. value .. '"}}'
      end
      body = '{"compare":[],"success":[' .. table.concat(puts, ",") .. '],"failure":[]}'
    else
      body = '{"key":"' .. key .. '"}'
    end
    if body then
      requests[i] = "POST " .. path .. " HTTP/1.1\r\nHost: " .. host ..
                    "\r\nContent-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
    end
  end
end

function request()
  local i = random(0, keys - 1)
  if mode == "put" then
    counter = counter + 1
    return put_heads[i] .. format("%08x%08x", random(0, 0x7fffffff), counter % 0x7fffffff) .. put_tail
  end
  return requests[i]
end
