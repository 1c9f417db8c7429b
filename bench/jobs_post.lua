-- jobs_post.lua - wrk script: POST /v1/jobs {"kind":"execFile","file":"/bin/true"}
-- (background job starts per second; used by bench/run.sh only once /v1/jobs exists).
wrk.method = "POST"
wrk.path = "/v1/jobs"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"kind":"execFile","file":"/bin/true","args":[]}'
