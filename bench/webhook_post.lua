-- webhook_post.lua - wrk script: POST /hooks/true to Debian's webhook with the
-- peers' hooks.json (hook id "true" runs /bin/true and answers its output; no
-- http-methods restriction, so POST like spawnd's and node_peer's requests).
wrk.method = "POST"
wrk.path = "/hooks/true"
