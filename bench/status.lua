-- wrk script: GET /api/v1/jobs/{id}, round robin over the ids listed one per line in WRK_IDS
local ids = {}
for line in io.lines(os.getenv("WRK_IDS")) do ids[#ids + 1] = line end
local i = 0
request = function()
  i = i % #ids + 1
  return wrk.format("GET", "/api/v1/jobs/" .. ids[i])
end
