-- wrk script: PUT a 100-byte value to one of KEYS keys (16-byte names),
-- chosen at random. KEYS comes from the environment (default 10000). Each
-- value carries a counter: a PUT of the value a key already holds changes
-- nothing (SPEC §1) and would measure nothing. Each wrk thread has a Lua
-- state of its own, so the seed mixes in that state's address: with one
-- seed, the threads would send the same PUTs and half would be no-ops.
local keys = tonumber(os.getenv("KEYS") or "10000")
local pad = string.rep("v", 88)
local counter = 0
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)

request = function()
  counter = counter + 1
  local key = string.format("key-%011d", math.random(0, keys - 1))
  return wrk.format("PUT", "/v1/kv/" .. key, nil, pad .. string.format("%012d", counter))
end
