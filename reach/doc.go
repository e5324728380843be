// Package reach is offedge's one reachability engine: the ways a node
// reaches a service, a site or an upstream member, hop by hop, each either
// open or refused by an allow list ([Block]: the object, its position, the
// refused node and the address the listener sees), and, for the ways that
// do not exist, one explanation text ("no shared network", "no IPv6
// egress", "its NAT gateway is down").
//
// `offedge check`, `why`, `impact`, `graph` and the lab all ask it; none of
// them walks the model for paths or explains a missing one itself. The
// addressing it builds on — which address a node dials, which source it
// presents, which NAT gateway it goes through — is the model's
// ([inventory.Live], [inventory.Model.GatewayOf]), and so is the resolution
// of an allow list into prefixes ([inventory.Model.ResolveAllow], which the
// plan's listener ACLs and firewall sets use too); the engine caches it once
// per entry and network, so a question costs what the paths it explores
// cost, not a scan of the whole model.
//
// An [Engine] is built once per model with [New]; [Engine.Without] gives
// the same engine on the model with some nodes down (a down node is never
// an end, a hop or a NAT gateway), sharing the indexes and the allow-list
// cache. Engines are safe for concurrent use.
//
// [Engine.Sources] gives an allow list as address prefixes per network, for
// whoever enforces it outside offedge's own listeners (the firewall).
package reach
