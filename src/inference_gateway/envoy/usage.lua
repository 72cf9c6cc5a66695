-- inference-gateway: what the EPP learns from a response body, read inside Envoy as it streams
-- by (never buffered): the number of non-empty chunks (more than one: the response streamed),
-- when the first one came (ms since the epoch, Envoy's clock), and the token counts of the last
-- `"usage": {...}` object, as the EPP's UsageScanner finds them (requestcontrol/usage.py):
-- non-streamed JSON bodies, and the last SSE event of a stream with stream_options.include_usage.
-- The values go to dynamic metadata (namespace below); the gRPC access log carries them to the EPP.

local NAMESPACE = "inference-gateway.usage"
local CARRY = 48          -- bytes kept across a chunk boundary, to find a key it splits
local MAX_USAGE = 4096    -- a usage object longer than this is not one we read
local USAGE_AT = '"usage"%s*:%s*{'

-- End (the '{') of the last `"usage": {` in `window` not already seen in the `carried` bytes.
local function last_usage(window, carried)
  local found, from = nil, 1
  while true do
    local s, e = string.find(window, USAGE_AT, from)
    if s == nil then
      return found
    end
    -- \"usage\" inside a JSON string is text, not a key
    if e > carried and (s == 1 or string.byte(window, s - 1) ~= 92) then
      found = e
    end
    from = s + 1
  end
end

-- Length of the JSON object that `text` starts with ('{'), or nil while it is incomplete.
local function object_length(text)
  local depth, pos, in_string = 0, 1, false
  while true do
    local at = string.find(text, in_string and '["\\]' or '[{}"]', pos)
    if at == nil then
      return nil
    end
    local c = string.byte(text, at)
    if in_string then
      if c == 92 then
        at = at + 1 -- skip the escaped character
      else
        in_string = false
      end
    elseif c == 34 then
      in_string = true
    elseif c == 123 then
      depth = depth + 1
    else
      depth = depth - 1
      if depth == 0 then
        return at
      end
    end
    pos = at + 1
  end
end

local function count(object, key)
  local value = string.match(object, '"' .. key .. '"%s*:%s*(%d+)')
  return value and tonumber(value) or nil
end

function envoy_on_response(handle)
  local chunks, first_ms, carry, pending, usage = 0, nil, "", nil, nil
  for chunk in handle:bodyChunks() do
    local size = chunk:length()
    if size > 0 then
      chunks = chunks + 1
      if first_ms == nil then
        first_ms = handle:timestamp()
      end
      local data = chunk:getBytes(0, size)
      local window = carry .. data
      local start = last_usage(window, #carry)
      if start ~= nil then
        pending = string.sub(window, start)
      elseif pending ~= nil then
        pending = pending .. data
      end
      if pending ~= nil then
        local length = object_length(pending)
        if length ~= nil then
          usage = string.sub(pending, 1, length)
          pending = nil
        elseif #pending > MAX_USAGE then
          pending = nil
        end
      end
      carry = string.sub(window, -CARRY)
    end
  end
  local meta = handle:streamInfo():dynamicMetadata()
  meta:set(NAMESPACE, "chunks", chunks)
  if first_ms ~= nil then
    meta:set(NAMESPACE, "first_byte_ms", first_ms)
  end
  if usage ~= nil then
    local prompt = count(usage, "prompt_tokens") or count(usage, "input_tokens")
    local completion = count(usage, "completion_tokens") or count(usage, "output_tokens")
    local cached = count(usage, "cached_tokens")
    local total = count(usage, "total_tokens")
    if prompt then meta:set(NAMESPACE, "prompt_tokens", prompt) end
    if completion then meta:set(NAMESPACE, "completion_tokens", completion) end
    if cached then meta:set(NAMESPACE, "cached_tokens", cached) end
    if total then meta:set(NAMESPACE, "total_tokens", total) end
  end
end
