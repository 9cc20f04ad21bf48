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
-- put: kvctl writes nothing for a put of the value a key already holds, so
-- a fixed value would measure no-ops there, not durable writes (etcd writes
-- either way). Each key has two whole put requests per wrk thread, their
-- values stamped with the thread's number, a tag drawn per run (so a run
-- after another on the same keys writes too) and 1 or 2; a thread
-- alternates them, so its next put of a key always differs from what the
-- key holds (its own last put or another thread's). Built once, as the
-- others are: building each put (a stamp, a concatenation) cost wrk about
-- 5% of the rate it could drive on a 2-core machine where wrk and the
-- server share the cores.
local put_requests, last_put = {{}, {}}, {}
local threads_set_up = 0
local random = math.random

function setup(thread)
  threads_set_up = threads_set_up + 1
  thread:set("thread_number", threads_set_up)  -- a global in that thread's Lua state
end

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
  local run_tag = random(0, 0xffffff)
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
      for variant = 1, 2 do
        local stamp = string.format("%02d%06x%d", thread_number or 0, run_tag, variant)
        local stamped = base64((stamp .. string.rep("v", value_size)):sub(1, value_size))
        local put_body = '{"key":"' .. key .. '","value":"' .. stamped .. '"}'
        put_requests[variant][i] = "POST " .. path .. " HTTP/1.1\r\nHost: " .. host ..
          "\r\nContent-Type: application/json\r\nContent-Length: " .. #put_body .. "\r\n\r\n" .. put_body
      end
      last_put[i] = 2
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
    local variant = 3 - last_put[i]
    last_put[i] = variant
    return put_requests[variant][i]
  end
  return requests[i]
end
