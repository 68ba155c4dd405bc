-- wrk script: HTTP/1.1 pipelining, as the TechEmpower plaintext test does.
--   wrk -t1 -c256 -d10s -s examples/http/pipeline.lua http://127.0.0.1:8080/plaintext -- 16
-- The argument after "--" is the pipeline depth (default 16): each write
-- carries that many GET requests.
local req

init = function(args)
   local depth = tonumber(args[1]) or 16
   wrk.headers["Connection"] = "keep-alive"
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format()
   end
   req = table.concat(r)
end

request = function()
   return req
end
