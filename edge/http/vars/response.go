package vars

// ResponseVariables are the external variables the HTTP edge fills in once
// the upstream (or the cache) has answered, for the templates evaluated on
// the answer (added header values): nginx's $upstream_cache_status (HIT,
// MISS, EXPIRED, STALE, ...; empty when the route has no cache) and
// $upstream_addr (the server that answered; empty when none was asked).
// Every site's scope declares them, in the inventory's checks and in the
// edge alike.
var ResponseVariables = []string{"upstream_cache_status", "upstream_addr"}
